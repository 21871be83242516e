#!/usr/bin/env bash
# Provision this machine for the container tests and leave it so: install Docker when missing,
# start dockerd when none answers (it keeps running after this script), make the images ready
# (official ones when they can be pulled, else the stand-ins), and print the environment the
# tests need. For working by hand:
#
#   eval "$(bash scripts/docker-up.sh)"
#   cargo nextest run -p session-redis
#
# scripts/test.sh does the same and then runs all tests, cleaning up after itself.
set -euo pipefail
LOG_TAG=docker-up
# shellcheck source=scripts/lib/docker.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/docker.sh"

# shellcheck disable=SC2119 # no extra packages here
docker_install
docker_start
[ -z "$STARTED_DOCKERD" ] || log "dockerd started (pid $STARTED_DOCKERD); it keeps running"
select_images
while read -r var; do
  printf 'export %s=%q\n' "$var" "${!var}"
done < <(image_variables)
echo 'export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1'
