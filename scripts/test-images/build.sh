#!/usr/bin/env bash
# Build stand-ins for the official images of the test containers (redis, postgres, mariadb,
# mongo), for machines that reach Debian's package mirror and PyPI but no container registry.
# Which services and tags: session-testcontainers/images.txt, the one list of test images (one
# folder here per service).
#
#   scripts/test-images/build.sh                  # every service of the list
#   scripts/test-images/build.sh redis mongo      # some
#   TC_PREFIX=me scripts/test-images/build.sh     # tag me/redis:7 ... (default tc-local/...)
#
# Idempotent: each image carries the label `session-rs.recipe`, a hash of what it is built from
# (its folder here, the base image, pinned versions); an image whose label matches is kept, so a
# second run takes about a second. Needs root, a running dockerd and a docker CLI with BuildKit
# (Debian's /usr/bin/docker); installs debootstrap with apt when it is missing.
#
# The Debian mirror is read from this machine's apt sources at run time. It is written into no
# file of the repository and no image layer: the base rootfs keeps no apt sources, each build
# gets a sources list as a BuildKit secret (mounted for one RUN, not stored), and logs are
# redacted.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PREFIX=${TC_PREFIX:-tc-local}
SUITE=bookworm # postgres 15, mariadb 10.11, redis 7: the versions the tags promise
DOCKER=${DOCKER:-$([ -x /usr/bin/docker ] && echo /usr/bin/docker || echo docker)}
# The mongo stand-in (see mongo/Dockerfile), pinned: it is a pre-release.
SECANTUSDB_VERSION=0.7.0b3
IMAGES_FILE=$HERE/../../session-testcontainers/images.txt

log() { printf '[images %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

# service -> stand-in tag, from the image list (columns: service, variable, official, tag).
declare -A TAG=()
LISTED=() # in the list's order
[ -r "$IMAGES_FILE" ] || die "cannot read the image list $IMAGES_FILE"
while read -r svc _ _ tag; do
  [ -n "$tag" ] || die "malformed line for '$svc' in $IMAGES_FILE"
  [ -f "$HERE/$svc/Dockerfile" ] || die "$IMAGES_FILE lists '$svc' but $HERE/$svc/Dockerfile is missing"
  TAG[$svc]=$tag
  LISTED+=("$svc")
done < <(grep -Ev '^[[:space:]]*(#|$)' "$IMAGES_FILE")
[ ${#TAG[@]} -gt 0 ] || die "$IMAGES_FILE lists no image"

services=("$@")
[ ${#services[@]} -gt 0 ] || services=("${LISTED[@]}")
for svc in "${services[@]}"; do [ -n "${TAG[$svc]:-}" ] || die "unknown service '$svc' (${LISTED[*]})"; done

# ---- the mirror: first Debian main archive in the apt sources (deb822 or one-line format) ------
find_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # A stanza is a paragraph; take its URIs when its Suites has a plain release name (not -security).
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; ok = 0
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^URIs:/) { split($i, a, /[ \t]+/); uri = a[2] }
             if ($i ~ /^Suites:/ && $i ~ /[ \t](bookworm|trixie|bullseye|stable)([ \t]|$)/) ok = 1
             if ($i ~ /^Enabled:[ \t]*no/) ok = 0
           }
           if (ok && uri != "" && uri !~ /security/) { print uri; exit } }' "$f"
  done | head -n1 | grep . && return 0
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { if ($i !~ /security/) print $i; break } }' |
    head -n1 | grep .
}
MIRROR=$(find_mirror) || die "no Debian mirror found in /etc/apt/sources.list{,.d/*}"
MIRROR=${MIRROR%/}
MIRROR_HOST=$(printf '%s' "$MIRROR" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')
redact() { sed -e "s#${MIRROR_HOST//./\\.}#<mirror>#g"; }

WORK=$(mktemp -d /var/tmp/session-rs-images.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
# Handed to each build as a secret: never COPYed, never in a layer.
cat >"$WORK/apt.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

recipe_label() { "$DOCKER" image inspect -f '{{ index .Config.Labels "session-rs.recipe" }}' "$1" 2>/dev/null || true; }

# ---- base: debootstrap --variant=minbase, imported as one layer ----------------------------------
BASE=$PREFIX/debian-base:$SUITE
base_recipe=$(printf 'debootstrap minbase %s r1' "$SUITE" | sha256sum | cut -c1-16)
if [ "$(recipe_label "$BASE")" != "$base_recipe" ]; then
  command -v debootstrap >/dev/null || {
    log "apt-get install debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
  }
  t0=$SECONDS
  log "debootstrap $SUITE -> $BASE"
  rootfs=$WORK/rootfs
  debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" 2>&1 | redact >"$WORK/debootstrap.log" ||
    { tail -n 30 "$WORK/debootstrap.log" >&2; die "debootstrap failed"; }
  # Drop everything that names the mirror, and caches.
  rm -rf "$rootfs"/etc/apt/sources.list "$rootfs"/etc/apt/sources.list.d/* \
    "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/log/bootstrap.log "$rootfs"/debootstrap
  if grep -rIlF "$MIRROR_HOST" "$rootfs/etc" "$rootfs/var" >/dev/null 2>&1; then
    die "the base rootfs still names the mirror; refusing to import it"
  fi
  tar -C "$rootfs" -c . | "$DOCKER" import -c 'CMD ["bash"]' -c 'ENV LANG=C.UTF-8' \
    -c "LABEL session-rs.recipe=$base_recipe" - "$BASE" >/dev/null
  rm -rf "$rootfs"
  log "$BASE built in $((SECONDS - t0)) s"
else
  log "$BASE up to date"
fi
base_id=$("$DOCKER" image inspect -f '{{.Id}}' "$BASE")

# ---- one BuildKit build per service ------------------------------------------------------------
for svc in "${services[@]}"; do
  img=$PREFIX/$svc:${TAG[$svc]}
  recipe=$( (cd "$HERE/$svc" && cat Dockerfile entrypoint.sh; echo "$base_id $SECANTUSDB_VERSION") | sha256sum | cut -c1-16)
  if [ "$(recipe_label "$img")" = "$recipe" ]; then
    log "$img up to date"
    continue
  fi
  t0=$SECONDS
  log "building $img"
  ctx=$WORK/ctx-$svc
  mkdir -p "$ctx"
  cp "$HERE/$svc/Dockerfile" "$HERE/$svc/entrypoint.sh" "$ctx/"
  chmod 755 "$ctx/entrypoint.sh"
  mkdir -p "$ctx/wheels"
  if [ "$svc" = mongo ]; then
    # Downloaded here with the machine's own pip settings; the build itself needs no PyPI.
    python3 -m pip download -q -d "$ctx/wheels" "secantusdb==$SECANTUSDB_VERSION" 2>&1 | redact >&2 ||
      die "pip download secantusdb==$SECANTUSDB_VERSION failed"
  fi
  # --network host: the build's apt-get reaches the mirror as this machine does, whatever the
  # bridge network's NAT rules are.
  if ! DOCKER_BUILDKIT=1 "$DOCKER" build --network host --progress=plain \
      --secret id=apt-sources,src="$WORK/apt.sources" \
      --build-arg BASE="$BASE" --label "session-rs.recipe=$recipe" \
      -t "$img" "$ctx" 2>&1 | redact >"$WORK/build-$svc.log"; then
    tail -n 40 "$WORK/build-$svc.log" >&2
    die "building $img failed"
  fi
  log "$img built in $((SECONDS - t0)) s"
done
# Old builds of these recipes, now untagged.
"$DOCKER" image prune -f --filter label=session-rs.recipe >/dev/null
