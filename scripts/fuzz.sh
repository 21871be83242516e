#!/usr/bin/env bash
# The fuzz targets of fuzz/ (cargo-fuzz, libFuzzer; nightly Rust, outside the stable workspace).
#
#   bash scripts/fuzz.sh smoke [SECONDS]   every target for SECONDS (default 5) from its committed
#                                          corpus, after replaying every kept reproducer
#   bash scripts/fuzz.sh long [RUNS]       every target for RUNS executions (default 10,000,000),
#                                          then the corpus is minimized in place (cargo fuzz cmin)
#   bash scripts/fuzz.sh long RUNS TARGET  one target
#
# Installs cargo-fuzz (pinned) when missing; needs a nightly toolchain (rustup). Fails when a
# target crashes, hangs (-timeout) or runs out of memory (-rss_limit_mb), or when a kept
# reproducer under fuzz/artifacts/ fails again. Logs go to target/fuzz/.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
CARGO_FUZZ_VERSION=0.13.2
LOGS=$PWD/target/fuzz
mkdir -p "$LOGS"
log() { printf '[fuzz %(%H:%M:%S)T] %s\n' -1 "$*"; }

mode=${1:-smoke}
if ! rustup toolchain list | grep -q '^nightly'; then
  log "no nightly toolchain: cargo fuzz needs one (rustup toolchain install nightly)"
  exit 1
fi
if ! cargo fuzz --version 2>/dev/null | grep -qF "$CARGO_FUZZ_VERSION"; then
  log "cargo install cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install -q --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

cd fuzz
mapfile -t targets < <(cargo +nightly fuzz list)
[ ${#targets[@]} -gt 0 ] || { log "no fuzz targets found"; exit 1; }
# The smoke run builds the targets in the dev profile (instrumented, debug assertions on, no
# optimization): it exists so that the targets cannot rot and the reproducers stay fixed, and a
# dev build of the targets' dependencies compiles in a fraction of the release build's time on a
# CI machine. The long runs, which need speed, build in release.
case $mode in
  smoke) profile=(--dev) ;;
  *) profile=(-O) ;;
esac
log "building ${#targets[@]} targets (${profile[*]}): ${targets[*]}"
cargo +nightly fuzz build "${profile[@]}"

# libFuzzer options shared by every run: a hang is an input that takes over 10 s, and a target
# may use at most 2 GiB.
limits=(-timeout=10 -rss_limit_mb=2048)

replay() {
  local target=$1 reproducers
  shopt -s nullglob
  reproducers=(artifacts/"$target"/*)
  shopt -u nullglob
  [ ${#reproducers[@]} -eq 0 ] && return 0
  log "$target: replaying ${#reproducers[@]} kept reproducer(s)"
  cargo +nightly fuzz run "${profile[@]}" "$target" "${reproducers[@]}" -- "${limits[@]}" >"$LOGS/$target-replay.log" 2>&1 || {
    log "$target: a kept reproducer fails again (see $LOGS/$target-replay.log)"
    return 1
  }
}

case $mode in
  smoke)
    seconds=${2:-5}
    for target in "${targets[@]}"; do
      replay "$target"
      # A copy of the committed corpus, so a smoke run leaves the tree as it was.
      work=$LOGS/corpus-$target
      rm -rf "$work"; mkdir -p "$work"
      [ -d "corpus/$target" ] && cp -r "corpus/$target/." "$work/"
      if ! cargo +nightly fuzz run "${profile[@]}" "$target" "$work" -- -max_total_time="$seconds" "${limits[@]}" \
        >"$LOGS/$target-smoke.log" 2>&1; then
        log "$target: FAILED (see $LOGS/$target-smoke.log)"
        exit 1
      fi
      log "$target: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$LOGS/$target-smoke.log" || echo 'done')"
    done
    ;;
  long)
    runs=${2:-10000000}
    [ -n "${3:-}" ] && targets=("$3")
    for target in "${targets[@]}"; do
      replay "$target"
      start=$SECONDS
      if ! cargo +nightly fuzz run -O "$target" -- -runs="$runs" -print_final_stats=1 "${limits[@]}" \
        >"$LOGS/$target-long.log" 2>&1; then
        log "$target: FAILED after $((SECONDS - start)) s (see $LOGS/$target-long.log)"
        exit 1
      fi
      executed=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$LOGS/$target-long.log" | grep -o '[0-9]*$')
      log "$target: $executed executions, 0 crashes, hangs or out-of-memory, in $((SECONDS - start)) s"
      cargo +nightly fuzz cmin -O "$target" >"$LOGS/$target-cmin.log" 2>&1
      log "$target: corpus minimized to $(find "corpus/$target" -type f | wc -l) inputs"
    done
    ;;
  *)
    echo "usage: bash scripts/fuzz.sh smoke [SECONDS] | long [RUNS [TARGET]]" >&2
    exit 2
    ;;
esac
