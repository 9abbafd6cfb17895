#!/usr/bin/env bash
# Real database servers for the driver plugin tests: PostgreSQL and MariaDB from Debian
# packages, each initialised in .ci-services/ (gitignored) and started on loopback on a
# fixed non-default port, with its unix socket in the same directory.
#
#   ci/services.sh [start]   install if missing, initialise if new, start if stopped (idempotent)
#   ci/services.sh stop      stop both servers (data is kept; `rm -rf .ci-services` resets)
#   ci/services.sh status    exit 0 when both answer
#
# The connection parameters go to .ci-services/env (KEY=VALUE lines, also valid shell), which
# tests/drivers/conftest.py reads; ATS_PG_* / ATS_MYSQL_* in the environment take precedence.
# Ports: ATS_PG_PORT / ATS_MYSQL_PORT, else the ones of servers this directory already runs, else
# the first free port from 55432 / 53306 (another checkout's servers may hold the defaults).
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=${ATS_SERVICES_DIR:-$PWD/.ci-services}
PG_PORT=${ATS_PG_PORT:-}
MY_PORT=${ATS_MYSQL_PORT:-}
DB=ats_test
USER_NAME=ats
PASSWORD=ats-test-password

log() { printf 'services: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Commands that the server refuses to run as root run as its own system user instead.
as_user() {
    local user=$1; shift
    if [ "$(id -u)" -eq 0 ]; then runuser -u "$user" -- "$@"; else "$@"; fi
}

install_packages() {
    local missing=()
    for pkg in postgresql mariadb-server; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages ${missing[*]}; run as root: apt-get install -y ${missing[*]}"
    log "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Packages only: the distribution's own service instances are never started (policy-rc.d
    # in containers; otherwise they stay on their default ports and are not used here).
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
        || { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}

# The servers' system users must be able to reach the data directory.
prepare_dir() {
    mkdir -p "$DIR/pg" "$DIR/mysql"
    chmod 755 "$DIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres:postgres "$DIR/pg"
        chown mysql:mysql "$DIR/mysql"
    fi
}

# ------------------------------------------------------------------ PostgreSQL

pg_bin() {
    local bin
    bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
    [ -n "$bin" ] || die "PostgreSQL binaries not found under /usr/lib/postgresql"
    printf '%s' "$bin"
}

pg_psql() {
    as_user postgres "$(pg_bin)/psql" -h "$DIR/pg" -p "$PG_PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

pg_start() {
    local bin; bin=$(pg_bin)
    if [ ! -f "$DIR/pg/data/PG_VERSION" ]; then
        as_user postgres "$bin/initdb" -D "$DIR/pg/data" -U postgres --auth-local=trust \
            --auth-host=scram-sha-256 --encoding=UTF8 --no-locale >"$DIR/pg/initdb.log" 2>&1 \
            || die "initdb failed, see $DIR/pg/initdb.log"
    fi
    if ! as_user postgres "$bin/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1; then
        as_user postgres "$bin/pg_ctl" -D "$DIR/pg/data" -l "$DIR/pg/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $DIR/pg -c fsync=off" start >/dev/null \
            || die "PostgreSQL did not start, see $DIR/pg/server.log"
    fi
    pg_psql -c "DO \$\$ BEGIN
          IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$USER_NAME') THEN
            CREATE ROLE $USER_NAME LOGIN PASSWORD '$PASSWORD';
          END IF;
        END \$\$;" >/dev/null
    if [ -z "$(pg_psql -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
        pg_psql -c "CREATE DATABASE $DB OWNER $USER_NAME" >/dev/null
    fi
}

pg_stop() {
    local bin; bin=$(pg_bin)
    if [ -f "$DIR/pg/data/PG_VERSION" ] && as_user postgres "$bin/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1; then
        as_user postgres "$bin/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null
    fi
}

pg_alive() {
    "$(pg_bin)/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"
}

# ------------------------------------------------------------------ MariaDB

MY_SOCK() { printf '%s' "$DIR/mysql/mysqld.sock"; }

my_sql() {
    mariadb --no-defaults -u root --socket="$(MY_SOCK)" -e "$1"
}

my_alive() {
    mariadb-admin --no-defaults -u root --socket="$(MY_SOCK)" ping >/dev/null 2>&1
}

my_start() {
    if [ ! -d "$DIR/mysql/data/mysql" ]; then
        # Root is authenticated by unix_socket: only the OS user that started it (root or the
        # invoking user) gets in through the socket; tests use the password account over TCP.
        mariadb-install-db --no-defaults --user="$( [ "$(id -u)" -eq 0 ] && echo mysql || id -un)" \
            --datadir="$DIR/mysql/data" --skip-test-db --auth-root-authentication-method=socket \
            >"$DIR/mysql/install.log" 2>&1 || die "mariadb-install-db failed, see $DIR/mysql/install.log"
    fi
    if ! my_alive; then
        local user_opt=()
        [ "$(id -u)" -eq 0 ] && user_opt=(--user=mysql)
        setsid mariadbd --no-defaults "${user_opt[@]}" --datadir="$DIR/mysql/data" \
            --socket="$(MY_SOCK)" --port="$MY_PORT" --bind-address=127.0.0.1 \
            --pid-file="$DIR/mysql/mysqld.pid" --log-error="$DIR/mysql/server.log" \
            --skip-name-resolve --innodb-flush-log-at-trx-commit=0 </dev/null >/dev/null 2>&1 &
        local i
        for i in $(seq 1 120); do
            my_alive && break
            sleep 0.5
        done
        my_alive || die "MariaDB did not start, see $DIR/mysql/server.log"
    fi
    my_sql "CREATE DATABASE IF NOT EXISTS $DB;
            CREATE USER IF NOT EXISTS '$USER_NAME'@'127.0.0.1' IDENTIFIED BY '$PASSWORD';
            CREATE USER IF NOT EXISTS '$USER_NAME'@'localhost' IDENTIFIED BY '$PASSWORD';
            GRANT ALL ON $DB.* TO '$USER_NAME'@'127.0.0.1';
            GRANT ALL ON $DB.* TO '$USER_NAME'@'localhost';"
}

my_stop() {
    if my_alive; then
        mariadb-admin --no-defaults -u root --socket="$(MY_SOCK)" shutdown
    fi
}

# ------------------------------------------------------------------ ports

port_free() {
    python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}

first_free_port() {
    local p=$1
    while ! port_free "$p"; do p=$((p + 1)); done
    printf '%s' "$p"
}

previous_port() {  # the port a server of this directory was started on, from the last env file
    [ -f "$DIR/env" ] && sed -n "s/^$1=//p" "$DIR/env" || true
}

choose_ports() {
    if [ -z "$PG_PORT" ]; then
        if [ -f "$DIR/pg/data/PG_VERSION" ] && as_user postgres "$(pg_bin)/pg_ctl" -D "$DIR/pg/data" status >/dev/null 2>&1; then
            PG_PORT=$(previous_port ATS_PG_PORT)
        fi
        [ -n "$PG_PORT" ] || PG_PORT=$(first_free_port 55432)
    fi
    if [ -z "$MY_PORT" ]; then
        if my_alive; then MY_PORT=$(previous_port ATS_MYSQL_PORT); fi
        [ -n "$MY_PORT" ] || MY_PORT=$(first_free_port 53306)
    fi
}

# ------------------------------------------------------------------ main

write_env() {
    cat >"$DIR/env.tmp" <<EOF
ATS_PG_HOST=127.0.0.1
ATS_PG_PORT=$PG_PORT
ATS_PG_SOCKET_DIR=$DIR/pg
ATS_PG_USER=$USER_NAME
ATS_PG_PASSWORD=$PASSWORD
ATS_PG_DATABASE=$DB
ATS_MYSQL_HOST=127.0.0.1
ATS_MYSQL_PORT=$MY_PORT
ATS_MYSQL_SOCKET=$(MY_SOCK)
ATS_MYSQL_USER=$USER_NAME
ATS_MYSQL_PASSWORD=$PASSWORD
ATS_MYSQL_DATABASE=$DB
EOF
    mv "$DIR/env.tmp" "$DIR/env"
}

case "${1:-start}" in
    start)
        install_packages
        prepare_dir
        choose_ports
        pg_start
        my_start
        write_env
        log "PostgreSQL 127.0.0.1:$PG_PORT, MariaDB 127.0.0.1:$MY_PORT (parameters in $DIR/env)"
        ;;
    stop)
        PG_PORT=${PG_PORT:-$(previous_port ATS_PG_PORT)}
        pg_stop
        my_stop
        ;;
    status)
        PG_PORT=${PG_PORT:-$(previous_port ATS_PG_PORT)}
        pg_alive && my_alive
        ;;
    *)
        die "usage: $0 [start|stop|status]"
        ;;
esac
