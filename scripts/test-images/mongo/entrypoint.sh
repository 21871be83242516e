#!/bin/sh
# `mongod` (or no command) runs the stand-in server on 0.0.0.0:27017 with its data in /data/db
# (kept across a container stop/start, as with the official image); any other
# command is run as given. Once it accepts TCP connections, prints a log line containing
# "Waiting for connections" to stdout, as the official image's JSON log does.
# --standalone: report no replica set, whose member list would name this container's own
# address, unreachable for a client outside it.
set -e
if [ "$#" -gt 0 ] && [ "$1" != mongod ]; then exec "$@"; fi
mkdir -p /data/db
/opt/mongo-standin/bin/secantusd-py --host 0.0.0.0 --port 27017 --storage-path /data/db --standalone &
server=$!
trap 'kill -TERM "$server" 2>/dev/null' TERM INT
n=0
until /opt/mongo-standin/bin/python3 -c 'import socket; socket.create_connection(("127.0.0.1", 27017), 0.2).close()' 2>/dev/null; do
  kill -0 "$server" 2>/dev/null || { wait "$server"; exit $?; }
  n=$((n + 1))
  [ "$n" -lt 600 ] || { echo >&2 'stand-in mongo server did not listen within 60 s'; exit 1; }
  sleep 0.1
done
echo '{"s":"I","c":"NETWORK","msg":"Waiting for connections","attr":{"port":27017}}'
# `wait` returns early when a trapped signal arrives: then wait again for the server to finish.
set +e
wait "$server"
rc=$?
if kill -0 "$server" 2>/dev/null; then wait "$server"; rc=$?; fi
exit "$rc"
