#!/bin/bash
# Like the official image, honours POSTGRES_PASSWORD, POSTGRES_USER (default postgres),
# POSTGRES_DB (default: the user), POSTGRES_HOST_AUTH_METHOD and PGDATA; `postgres [args]`
# (or just args) runs the server, any other command is run as given.
# Readiness: the server logs "database system is ready to accept connections" to stderr once
# it listens on TCP. Initialisation uses no temporary server, so the line appears once per start.
set -euo pipefail
bindir=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
export PATH=$bindir:$PATH
case "${1:-}" in
  '' | -*) set -- postgres "$@" ;;
esac
[ "$1" = postgres ] || exec "$@"
shift

export PGDATA=${PGDATA:-/var/lib/postgresql/data}
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}
if [ -n "${POSTGRES_PASSWORD:-}" ]; then auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
elif [ "${POSTGRES_HOST_AUTH_METHOD:-}" = trust ]; then auth=trust
else
  echo >&2 'Error: database is uninitialized and superuser password is not specified.'
  echo >&2 '  Set POSTGRES_PASSWORD (or POSTGRES_HOST_AUTH_METHOD=trust).'
  exit 1
fi
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }

mkdir -p "$PGDATA" /run/postgresql
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp)
  printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pw"
  chown postgres "$pw"
  as_postgres initdb --username="$user" --pwfile="$pw" --auth-local=trust --auth-host="$auth" \
    --encoding=UTF8 --locale=C.UTF-8 --no-sync >/dev/null
  rm -f "$pw"
  printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    # Single-user mode: no server to start and wait for.
    printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$db" "$user" | as_postgres postgres --single -D "$PGDATA" postgres >/dev/null
  fi
  echo 'PostgreSQL init process complete; ready for start up.'
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
  postgres -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/run/postgresql "$@"
