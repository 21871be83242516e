# shellcheck shell=bash
# Shared by scripts/test.sh and scripts/docker-up.sh (sourced, not run).
#
# What lives here: installing Docker when it is missing, starting a dockerd when none answers,
# and choosing the image each test container runs (official image when it is present or can be
# pulled, else a stand-in built by scripts/test-images/build.sh).
#
# Callers set `set -euo pipefail` and read these variables after the functions ran:
#   DOCKER           the docker CLI to use
#   STARTED_DOCKERD  pid of the dockerd that docker_start started, empty if one was running

SCRIPTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# The one list of test images (service, variable, official image, stand-in tag), also read by
# the fixtures crate at build time and by scripts/test-images/build.sh.
IMAGES_FILE=$SCRIPTS_DIR/../session-testcontainers/images.txt
DOCKER_SOCK=/var/run/docker.sock
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/session-rs-dockerd.log}
STARTED_DOCKERD=

log() { printf '[%s %(%H:%M:%S)T] %s\n' "${LOG_TAG:-test}" -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Debian's CLI is preferred: it is as old as Debian's daemon and has BuildKit built in (the newer
# CLI some machines carry in /usr/local/bin needs the buildx plugin for `build --secret`).
pick_docker_cli() {
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker
  elif command -v docker >/dev/null 2>&1; then DOCKER=$(command -v docker)
  else DOCKER=; fi
}

apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to install $* (apt-get); install it by hand or run as root"
  command -v apt-get >/dev/null || die "no apt-get to install $*; install it by hand"
  log "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Debian packages Docker needs here, if any (nothing when a daemon answers already and a CLI
# exists: Docker from elsewhere is fine).
docker_packages() {
  if command -v docker >/dev/null 2>&1 && docker_ping; then return 0; fi
  if ! [ -x /usr/sbin/dockerd ] || ! [ -x /usr/bin/docker ]; then echo docker.io; fi
}

# Debian packages the browser test of examples/express-tutorial needs, unless the caller points
# it at its own Chromium and chromedriver (CHROMIUM, CHROMEDRIVER).
browser_packages() {
  if [ -z "${CHROMIUM:-}" ] && ! [ -x /usr/bin/chromium ]; then echo chromium; fi
  if [ -z "${CHROMEDRIVER:-}" ] && ! [ -x /usr/bin/chromedriver ]; then echo chromium-driver; fi
}

# Installs what is missing in one apt run, then picks the docker CLI.
docker_install() {
  local packages
  mapfile -t packages < <(docker_packages; for extra in "$@"; do echo "$extra"; done)
  [ ${#packages[@]} -eq 0 ] || apt_install "${packages[@]}"
  pick_docker_cli
  [ -n "$DOCKER" ] || die "no docker CLI found after installing docker.io"
}

docker_ping() {
  if command -v curl >/dev/null 2>&1; then
    curl -fsS --max-time 3 --unix-socket "$DOCKER_SOCK" http://localhost/_ping >/dev/null 2>&1
  else
    timeout 5 "${DOCKER:-docker}" version -f '{{.Server.Version}}' >/dev/null 2>&1
  fi
}

# Start dockerd unless one answers. `--ip=127.0.0.1`: published ports listen on loopback only.
docker_start() {
  if docker_ping; then
    log "using the running Docker daemon ($("$DOCKER" version -f '{{.Server.Version}}' 2>/dev/null || echo '?'))"
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "Docker is not running and starting dockerd needs root: start Docker and run again"
  local pid_file=/var/run/docker.pid
  if [ -s "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
    log "a dockerd (pid $(cat "$pid_file")) exists but does not answer yet; waiting for it"
  else
    # A pid file left by a daemon that died without cleaning up makes dockerd refuse to start.
    rm -f "$pid_file"
    log "starting dockerd (log: $DOCKERD_LOG)"
    # setsid: the daemon must not die with the shell or process group that started it.
    setsid dockerd --ip=127.0.0.1 >>"$DOCKERD_LOG" 2>&1 </dev/null &
    STARTED_DOCKERD=$!
  fi
  for _ in $(seq 1 120); do
    docker_ping && break
    if [ -n "$STARTED_DOCKERD" ] && ! kill -0 "$STARTED_DOCKERD" 2>/dev/null; then
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      die "dockerd exited at start (see $DOCKERD_LOG)"
    fi
    sleep 0.5
  done
  docker_ping || { tail -n 30 "$DOCKERD_LOG" >&2 || true; die "dockerd did not answer within 60 s (see $DOCKERD_LOG)"; }
  # The daemon's own record of its pid, should setsid have forked.
  if [ -n "$STARTED_DOCKERD" ] && [ -s "$pid_file" ]; then STARTED_DOCKERD=$(cat "$pid_file"); fi
  log "dockerd $("$DOCKER" version -f '{{.Server.Version}}') is up"
}

docker_stop_started() {
  [ -n "$STARTED_DOCKERD" ] || return 0
  log "stopping the dockerd this run started (pid $STARTED_DOCKERD)"
  kill -TERM "$STARTED_DOCKERD" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$STARTED_DOCKERD" 2>/dev/null || return 0; sleep 0.5; done
  log "dockerd $STARTED_DOCKERD still running after 30 s; leaving it"
}

# The rows of the image list, without comments and blank lines: "service variable official tag".
image_table() {
  [ -r "$IMAGES_FILE" ] || die "cannot read the image list $IMAGES_FILE"
  grep -Ev '^[[:space:]]*(#|$)' "$IMAGES_FILE"
}

# The variables of the image list, one a line (TC_IMAGE_REDIS, ...).
image_variables() { image_table | awk '{ print $2 }'; }

# Export TC_IMAGE_* for every service: a value set by the caller is kept; else the official
# image if present or pullable; else the stand-in, built when missing or out of date.
# TC_PULL=0 skips the pull attempts (for machines known to have no registry).
select_images() {
  local prefix=${TC_PREFIX:-tc-local}
  local svc var official tag table to_build=() pull_ok=${TC_PULL:-1}
  table=$(image_table)
  while read -r svc var official tag; do
    if [ -n "${!var:-}" ]; then
      log "$var=${!var} (set by the caller)"
      continue
    fi
    if "$DOCKER" image inspect "$official" >/dev/null 2>&1; then
      export "$var=$official"; log "$var=$official (present)"; continue
    fi
    if [ "$pull_ok" = 1 ]; then
      log "docker pull $official"
      if timeout "${TC_PULL_TIMEOUT:-300}" "$DOCKER" pull -q "$official" >/dev/null 2>&1; then
        export "$var=$official"; log "$var=$official (pulled)"; continue
      fi
      # One registry for all: once a pull fails the others would fail (or hang) too.
      log "cannot pull $official; using stand-in images from scripts/test-images"
      pull_ok=0
    fi
    export "$var=$prefix/$svc:$tag"
    to_build+=("$svc")
  done <<<"$table"
  if [ ${#to_build[@]} -gt 0 ]; then
    TC_PREFIX=$prefix DOCKER="$DOCKER" bash "$SCRIPTS_DIR/test-images/build.sh" "${to_build[@]}"
    for svc in "${to_build[@]}"; do
      var=$(awk -v s="$svc" '$1 == s { print $2 }' <<<"$table")
      log "$var=${!var} (stand-in)"
    done
  fi
}
