#!/bin/bash
# Like the official image, honours MARIADB_ROOT_PASSWORD, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD,
# MARIADB_DATABASE, MARIADB_USER and MARIADB_PASSWORD (or their MYSQL_* spellings);
# `mariadbd [args]` (or just args) runs the server, any other command is run as given.
# Readiness: the server logs "ready for connections." and then "... port: 3306 ..." to stderr.
# Users and database are created through --init-file on the first start, before the server
# reports ready, so there is no temporary server (whose log would say "port: 0").
set -euo pipefail
case "${1:-}" in
  '' | -*) set -- mariadbd "$@" ;;
esac
[ "$1" = mariadbd ] || [ "$1" = mysqld ] || exec "$@"
shift

setting() { local m=MARIADB_$1 o=MYSQL_$1; printf '%s' "${!m:-${!o:-}}"; }
root_pw=$(setting ROOT_PASSWORD)
allow_empty=$(setting ALLOW_EMPTY_ROOT_PASSWORD)
db=$(setting DATABASE)
app_user=$(setting USER)
app_pw=$(setting PASSWORD)
# For '...' literals in SQL.
sql_str() { printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e "s/'/\\\\'/g"; }

datadir=/var/lib/mysql
mkdir -p /run/mysqld "$datadir"
chown mysql:mysql /run/mysqld "$datadir"
if [ ! -d "$datadir/mysql" ]; then
  if [ -z "$root_pw" ] && [ -z "$allow_empty" ]; then
    echo >&2 'error: database is uninitialized and password option is not specified'
    echo >&2 '  Set MARIADB_ROOT_PASSWORD or MARIADB_ALLOW_EMPTY_ROOT_PASSWORD.'
    exit 1
  fi
  mariadb-install-db --user=mysql --datadir="$datadir" --auth-root-authentication-method=socket \
    --skip-test-db --skip-name-resolve --cross-bootstrap >/dev/null
  init=/run/mysqld/init.sql
  {
    echo "CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '$(sql_str "$root_pw")';"
    echo "GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
    echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('$(sql_str "$root_pw")') OR unix_socket;"
    [ -z "$db" ] || echo "CREATE DATABASE IF NOT EXISTS \`$db\`;"
    if [ -n "$app_user" ]; then
      echo "CREATE USER IF NOT EXISTS '$(sql_str "$app_user")'@'%' IDENTIFIED BY '$(sql_str "$app_pw")';"
      [ -z "$db" ] || echo "GRANT ALL ON \`$db\`.* TO '$(sql_str "$app_user")'@'%';"
    fi
  } >"$init"
  chown mysql:mysql "$init"
  chmod 600 "$init"
  set -- --init-file="$init" "$@"
  echo 'MariaDB init process done. Ready for start up.'
fi
exec mariadbd --user=mysql --datadir="$datadir" --bind-address=0.0.0.0 --port=3306 \
  --socket=/run/mysqld/mysqld.sock --skip-name-resolve "$@"
