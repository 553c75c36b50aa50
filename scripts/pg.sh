#!/bin/bash
# A private PostgreSQL cluster under a directory of ours (var/...).
#   scripts/pg.sh start DIR [PORT]   initdb when new, start, create role and database
#   scripts/pg.sh stop DIR           fast shutdown
#   scripts/pg.sh kill DIR           immediate stop (crash simulation)
#   scripts/pg.sh env DIR            print PGHOST/PGPORT exports
# PostgreSQL refuses to run as root, so as root the server runs as the
# "postgres" system user (Debian's package creates it) and DIR/data is
# owned by it.  The server listens on a Unix socket in DIR/sock only.
# PG_SHARED_BUFFERS (e.g. 2GB) starts the server with that buffer pool
# instead of the 256MB of its configuration (make bench's
# BENCH_SHARED_BUFFERS); a running server with another size is restarted.
set -eu
cmd=${1:?start|stop|kill|env}
DIR=${2:?directory}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
[ -x "$PGBIN/pg_ctl" ] || { echo "pg.sh: no PostgreSQL server binaries found (install postgresql-15)" >&2; exit 1; }

as_pg() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

case "$cmd" in
start)
    PORT=${3:-}
    if [ -z "$PORT" ]; then
        if [ -f "$DIR/port" ]; then PORT=$(cat "$DIR/port"); else PORT=$((20000 + RANDOM % 20000)); fi
    fi
    echo "$PORT" >"$DIR/port"
    mkdir -p "$DIR/sock"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$DIR" "$DIR/sock"
        # every directory above DIR must be traversable by postgres
        d=$DIR; while [ "$d" != / ]; do d=$(dirname "$d"); chmod o+x "$d" 2>/dev/null || true; done
    fi
    if [ ! -f "$DIR/data/PG_VERSION" ]; then
        rm -rf "$DIR/data"
        as_pg "$PGBIN/initdb" -D "$DIR/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
            || { cat "$DIR/initdb.log" >&2; exit 1; }
        cat >>"$DIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$DIR/sock'
port = $PORT
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 200
shared_buffers = 256MB
wal_buffers = 16MB
max_wal_size = 2GB
logging_collector = off
log_min_messages = warning
CONF
    fi
    sed -i "s/^port = .*/port = $PORT/" "$DIR/data/postgresql.conf"
    opts=()
    [ -n "${PG_SHARED_BUFFERS:-}" ] && opts=(-o "-c shared_buffers=$PG_SHARED_BUFFERS")
    if as_pg "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        [ -z "${PG_SHARED_BUFFERS:-}" ] && exit 0
        have=$(as_pg psql -h "$DIR/sock" -p "$PORT" -U postgres -d postgres -qtAc "SHOW shared_buffers" 2>/dev/null || true)
        [ "$have" = "$PG_SHARED_BUFFERS" ] && exit 0
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
    fi
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 "${opts[@]}" start >/dev/null
    ;;
stop)
    [ -f "$DIR/data/PG_VERSION" ] || exit 0
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
kill)
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    ;;
env)
    echo "export PGHOST='$DIR/sock' PGPORT='$(cat "$DIR/port")' PGUSER=postgres"
    ;;
*)
    echo "pg.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
