#!/bin/bash
# A private PostgreSQL cluster under a directory of ours (var/...).
#   scripts/pg.sh start DIR [PORT]   initdb when new, start, create role and database
#   scripts/pg.sh stop DIR           fast shutdown
#   scripts/pg.sh kill DIR           immediate stop (crash simulation)
#   scripts/pg.sh env DIR            print PGHOST/PGPORT exports
# PostgreSQL refuses to run as root, so as root the server runs as the
# "postgres" system user (Debian's package creates it) and DIR/data is
# owned by it.  The server listens on a Unix socket in DIR/sock only.
# postgres must be able to search every directory above DIR: start makes
# those of the project's var/ searchable; one outside it that is not (a
# clone under /root, 0700 on Debian) gets an ACL entry for postgres alone
# (search, not list), said on stderr; without ACLs start refuses, saying
# what to do.
# PG_SHARED_BUFFERS (e.g. 2GB) starts the server with that buffer pool
# instead of the 256MB of its configuration (make bench's
# BENCH_SHARED_BUFFERS); a running server with another size is restarted.
# Such settings of a start go into DIR/data/pf-start.conf, which the
# configuration includes last.
# PG_HUGE_PAGES=on maps the server's shared memory with 2 MB pages
# (huge_pages = on).  As root, start reserves the pages the server needs
# (vm.nr_hugepages, from PostgreSQL's own shared_memory_size_in_huge_pages)
# and stop and kill give back what start reserved; a server that cannot
# have them starts with ordinary pages and says so.  On this VM every first
# touch of a 4 KiB page of the pool cost up to 60 us, and PostgreSQL spent
# 25-35% less CPU per notice with huge pages (docs/architecture.md).
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

# As root: the server runs as postgres, which must be able to search every
# directory from / down to DIR.  Directories of the project's var/ are made
# searchable (o+x); any other one gets "u:postgres:x" by ACL (the acl
# package, installed by scripts/deps.sh), or start refuses with what to do.
reachable() {
    local var p rest blocked=
    var=$(cd "$(dirname "$0")/.." && pwd)/var
    p=
    rest=${DIR#/}
    while [ -n "$rest" ]; do
        p=$p/${rest%%/*}
        case $rest in */*) rest=${rest#*/} ;; *) rest= ;; esac
        if [ -z "$blocked" ]; then
            runuser -u postgres -- test -x "$p" && continue
        else
            # below a blocked one postgres cannot test: judge by the mode
            [ "$(stat -c %U "$p")" = postgres ] && continue
            case $(stat -c %A "$p") in *[xt]) continue ;; esac
        fi
        case $p/ in
        "$var"/*) chmod o+x "$p" ;;
        *) blocked="$blocked $p" ;;
        esac
    done
    [ -z "$blocked" ] && return 0
    # the narrowest way through: the one user postgres may search (x, not
    # list) those directories, by ACL; said, not done silently
    if command -v setfacl >/dev/null 2>&1 && setfacl -m u:postgres:x $blocked 2>/dev/null; then
        for p in $blocked; do
            echo "pg.sh: granted the user postgres search (x) on $p by ACL, so that" \
                "PostgreSQL can reach $DIR (undo: setfacl -x u:postgres $p)" >&2
        done
        return 0
    fi
    echo "pg.sh: PostgreSQL runs as the user postgres, which cannot reach $DIR:" >&2
    for p in $blocked; do
        echo "pg.sh:   $(stat -c '%A %U' "$p") $p" >&2
    done
    echo "pg.sh: let postgres through (e.g. 'setfacl -m u:postgres:x${blocked}'" \
        "or 'chmod o+x${blocked}'), or work in a clone elsewhere (e.g. under /srv)" >&2
    exit 1
}

meminfo() { awk -v k="$1:" '$1 == k {print $2}' /proc/meminfo; }

# Reserves the huge pages the server in DIR needs, if it has too few;
# prints "on" when they are there, "off" when not.
huge_reserve() {
    local need avail have total
    need=$(as_pg "$PGBIN/postgres" -D "$DIR/data" -C shared_memory_size_in_huge_pages \
        ${PG_SHARED_BUFFERS:+-c shared_buffers=$PG_SHARED_BUFFERS} 2>/dev/null) || need=
    [ -n "$need" ] && [ "$need" -gt 0 ] || { echo off; return; }
    avail=$(($(meminfo HugePages_Free) - $(meminfo HugePages_Rsvd)))
    if [ "$avail" -lt "$need" ] && [ "$(id -u)" -eq 0 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
        total=$(cat /proc/sys/vm/nr_hugepages)
        echo $((total + need - avail)) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
        have=$(cat /proc/sys/vm/nr_hugepages)
        [ "$have" -gt "$total" ] && echo $((have - total + $(cat "$DIR/hugepages" 2>/dev/null || echo 0))) >"$DIR/hugepages"
        avail=$(($(meminfo HugePages_Free) - $(meminfo HugePages_Rsvd)))
    fi
    if [ "$avail" -ge "$need" ]; then echo on; else echo off; fi
}

# Gives back the huge pages start reserved for DIR (after the server is gone).
huge_release() {
    [ -f "$DIR/hugepages" ] || return 0
    local n total
    n=$(cat "$DIR/hugepages")
    total=$(cat /proc/sys/vm/nr_hugepages)
    [ "$total" -ge "$n" ] || n=$total
    echo $((total - n)) >/proc/sys/vm/nr_hugepages 2>/dev/null || true
    rm -f "$DIR/hugepages"
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
        reachable
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
    want_huge=${PG_HUGE_PAGES:-off}
    if as_pg "$PGBIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
        [ -z "${PG_SHARED_BUFFERS:-}" ] && [ -z "${PG_HUGE_PAGES:-}" ] && exit 0
        q() { as_pg psql -h "$DIR/sock" -p "$PORT" -U postgres -d postgres -qtAc "SHOW $1" 2>/dev/null || true; }
        { [ -z "${PG_SHARED_BUFFERS:-}" ] || [ "$(q shared_buffers)" = "$PG_SHARED_BUFFERS" ]; } &&
            { [ -z "${PG_HUGE_PAGES:-}" ] || [ "$(cat "$DIR/huge_mode" 2>/dev/null || echo off)" = "$want_huge" ]; } &&
            exit 0
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null
        huge_release
    fi
    # this start's settings go into a file the configuration includes, not
    # onto the command line: a reload (make bench's A/B scripts set server
    # parameters that way) then reads the values the server runs with, and
    # does not log that shared_buffers cannot change without a restart
    grep -qx "include_if_exists = 'pf-start.conf'" "$DIR/data/postgresql.conf" ||
        echo "include_if_exists = 'pf-start.conf'" >>"$DIR/data/postgresql.conf"
    settings=
    [ -n "${PG_SHARED_BUFFERS:-}" ] && settings="shared_buffers = '$PG_SHARED_BUFFERS'"$'\n'
    if [ "$want_huge" = on ]; then
        if [ "$(huge_reserve)" = on ]; then
            settings="${settings}huge_pages = on"$'\n'
        else
            echo "pg.sh: no huge pages to be had (vm.nr_hugepages); ordinary pages" >&2
            settings="${settings}huge_pages = off"$'\n'
        fi
    fi
    printf '# written by scripts/pg.sh start: the settings of this start\n%s' "$settings" \
        >"$DIR/data/pf-start.conf"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$DIR/data/pf-start.conf"
    # what was asked for, not what the server got: a server left on
    # ordinary pages for want of huge ones is not restarted every time
    echo "$want_huge" >"$DIR/huge_mode"
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null
    ;;
stop)
    [ -f "$DIR/data/PG_VERSION" ] || exit 0
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    huge_release
    ;;
kill)
    as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    huge_release
    ;;
env)
    echo "export PGHOST='$DIR/sock' PGPORT='$(cat "$DIR/port")' PGUSER=postgres"
    ;;
*)
    echo "pg.sh: unknown command '$cmd'" >&2; exit 2 ;;
esac
