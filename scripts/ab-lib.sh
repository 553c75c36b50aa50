# Shared by bench-ab.sh and bench-reader-ab.sh (sourced, not run): the
# command line, the kept bench cluster, the alternating rounds, medians.
#   ab_args USAGE_LINES "$@"   sets ROUNDS, SECS, A, B and AB_REST (what
#                              follows the settings, without "--")
#   ab_cluster                 starts var/bench-pg; sets PGDIR, DB, PSQL, PG_PID
#   ab_daemon KIND SETTINGS    sets DAEMON_DB (the daemon's conninfo) and
#                              DAEMON_ARGS (its --set arguments).  KIND is
#                              broker or reader; it logs in as make bench's
#                              postfach_bench_KIND when that login exists, or
#                              as the login named by a pseudo-setting
#                              login=NAME (login=postgres: the superuser);
#                              a pseudo-setting pg.NAME=VALUE sets a server
#                              parameter for this side (ALTER SYSTEM and a
#                              reload; reset again before the other side)
#   ab_rounds FUNC             FUNC LABEL SETTINGS RUN "${AB_REST[@]}" for A
#                              and B, the order swapping every round
#   ... | median               the median of numbers, one per line

ab_args() {
    local usage=$1
    shift
    ROUNDS=3
    SECS=10
    while [ $# -gt 0 ]; do
        case "$1" in
        -n) ROUNDS=$2; shift 2 ;;
        -s) SECS=$2; shift 2 ;;
        *) break ;;
        esac
    done
    [ $# -ge 2 ] || { sed -n "$usage" "$0" >&2; exit 2; }
    A=$1
    B=$2
    shift 2
    [ "${1:-}" = -- ] && shift
    AB_REST=("$@")
}

ab_cluster() {
    PGDIR=$ROOT/var/bench-pg
    # the same buffer pool as make bench (scripts/bench.sh)
    PG_SHARED_BUFFERS=${BENCH_SHARED_BUFFERS:-1GB} PG_HUGE_PAGES=${BENCH_HUGE_PAGES:-on} \
        scripts/pg.sh start "$PGDIR" >/dev/null
    local host=$PGDIR/sock port
    port=$(cat "$PGDIR/port")
    DB="host=$host port=$port dbname=postfach_bench user=postgres"
    PSQL="psql -h $host -p $port -U postgres -d postfach_bench -v ON_ERROR_STOP=1 -qtA"
    PG_PID=$(head -n 1 "$PGDIR/data/postmaster.pid")
}

AB_PG_SET=
# Resets what pg.NAME=VALUE settings set (the scripts call it on exit too).
ab_pg_reset() {
    local name
    for name in $AB_PG_SET; do
        $PSQL -c "ALTER SYSTEM RESET $name" >/dev/null
    done
    [ -z "$AB_PG_SET" ] || $PSQL -c "SELECT pg_reload_conf()" >/dev/null
    AB_PG_SET=
}

ab_daemon() {
    local kind=$1 settings=$2 s name user=postfach_bench_$1
    DAEMON_ARGS=()
    [ "$($PSQL -c "SELECT count(*) FROM pg_roles WHERE rolname = '$user'")" = 1 ] || user=postgres
    ab_pg_reset
    for s in $settings; do
        case "$s" in
        login=*) user=${s#login=} ;;
        pg.*=*)
            name=${s%%=*}
            name=${name#pg.}
            $PSQL -c "ALTER SYSTEM SET $name = '${s#*=}'" >/dev/null
            AB_PG_SET="$AB_PG_SET $name"
            ;;
        *) DAEMON_ARGS+=(--set "$s") ;;
        esac
    done
    # a new session reads the server's settings when the reload is done
    if [ -n "$AB_PG_SET" ]; then
        $PSQL -c "SELECT pg_reload_conf()" >/dev/null
        sleep 0.3
    fi
    DAEMON_DB="${DB% user=*} user=$user"
}

ab_rounds() {
    local fn=$1 r
    for r in $(seq 1 "$ROUNDS"); do
        if [ $((r % 2)) = 1 ]; then
            "$fn" A "$A" "$r" "${AB_REST[@]}"; "$fn" B "$B" "$r" "${AB_REST[@]}"
        else
            "$fn" B "$B" "$r" "${AB_REST[@]}"; "$fn" A "$A" "$r" "${AB_REST[@]}"
        fi
    done
}

median() { sort -n | awk '{v[NR] = $1} END {if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2)}'; }
