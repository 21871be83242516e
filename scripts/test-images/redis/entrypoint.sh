#!/bin/sh
# Like the official image: `redis-server [args]` (or just args) runs the server in the foreground,
# logging "Ready to accept connections" to stdout; any other command is run as given
# (the Redis Cluster fixture runs a shell script here).
set -e
case "${1:-}" in
  '' | -*) set -- redis-server "$@" ;;
esac
if [ "$1" = redis-server ]; then
  shift
  # No config file: foreground, stdout logging, port 6379, the default snapshot rules with the
  # data in /data, as the official image (so data outlives a container stop/start there too).
  # Not protected: clients come through the port mapping, i.e. not from loopback.
  mkdir -p /data
  exec redis-server --bind '* -::*' --protected-mode no --dir /data "$@"
fi
exec "$@"
