#!/bin/bash
# A/B of two reader configurations (or builds) on first opens, on the kept
# bench database, in alternating runs (see bench-ab.sh for why):
#
#   BENCH_KEEP=1 BENCH_ONLY=d1 make bench    # once: database, keys, notices, a.ids
#   scripts/bench-reader-ab.sh [-n ROUNDS] [-s SECONDS] "SETTINGS A" "SETTINGS B" [-- READER-BENCH ARGS...]
#
# SETTINGS are postfach-reader --set values separated by spaces ("" for
# the defaults), e.g.  scripts/bench-reader-ab.sh "threads=4" "threads=8".
# login=NAME among the SETTINGS picks the daemon's database login (default:
# make bench's own login for it; login=postgres runs it as the superuser).
# pg.NAME=VALUE sets a PostgreSQL parameter for that side only, e.g.
# "pg.wal_compression=lz4" "" (ALTER SYSTEM and a reload, reset afterwards).
# BIN_A and BIN_B (directories with postfach-reader) compare two builds.
# Before every run all copies are made unread again and the read
# receipts deleted (VACUUM, CHECKPOINT), so each run opens first-time
# copies: every request decrypts, signs a read receipt and commits the
# retrieval.  REOPEN=1 marks every copy read instead: the requests only
# read and decrypt (what a second opening costs).  Each run prints the bench's summary line and the CPU per
# request of the reader and of PostgreSQL (all its processes, from
# /proc); the end prints the medians for A and B.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=$ROOT/build/release/bin
KEYS=$ROOT/var/bench/keys
IDS=$ROOT/var/bench/a.ids
OUT=$ROOT/var/bench/reader-ab
. scripts/ab-lib.sh
ab_args 2,18p "$@"
[ -d "$ROOT/var/bench-pg/data" ] && [ -f "$KEYS/kek" ] && [ -s "$IDS" ] ||
    { echo "bench-reader-ab: no kept bench database; run BENCH_KEEP=1 BENCH_ONLY=d1 make bench first" >&2; exit 1; }
ab_cluster
TICK=$(getconf CLK_TCK)
mkdir -p "$OUT"
rm -f "$OUT"/*.txt

reader_pid=
trap '[ -n "$reader_pid" ] && kill -TERM "$reader_pid" 2>/dev/null; wait 2>/dev/null; ab_pg_reset' EXIT

ticks() { # PID...: user + system clock ticks of these processes
    local t=0 p f
    for p in "$@"; do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        f=${f##*) }
        set -- $f
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}
pg_ticks() { # the postmaster, its live children and the children it reaped
    local f
    f=$(cat "/proc/$PG_PID/stat")
    f=${f##*) }
    set -- $f
    echo $(($(ticks $(ps -o pid= --ppid "$PG_PID")) + ${12} + ${13} + ${14} + ${15}))
}

one() { # LABEL SETTINGS RUN-NUMBER ARGS...
    local label=$1 settings=$2 n=$3
    shift 3
    local port=$((20000 + RANDOM % 30000)) args=() bin=$BIN
    [ "$label" = A ] && bin=${BIN_A:-$BIN}
    [ "$label" = B ] && bin=${BIN_B:-$BIN}
    ab_daemon reader "$settings"
    args=("${DAEMON_ARGS[@]}")
    if [ "${REOPEN:-0}" = 1 ]; then
        $PSQL -c "UPDATE message SET read_at = now() WHERE read_at IS NULL" >/dev/null
    else
        $PSQL -c "UPDATE message SET read_at = NULL WHERE read_at IS NOT NULL" \
            -c "DELETE FROM receipt WHERE event = 'read'" >/dev/null
    fi
    $PSQL -c "VACUUM message" -c "VACUUM receipt" -c CHECKPOINT >/dev/null
    "$bin/postfach-reader" --set "db=$DAEMON_DB" --set listen_address=127.0.0.1 --set "listen_port=$port" \
        --set "kek_file=$KEYS/kek" --set "receipt_key_file=$KEYS/receipt.jwk" \
        --set "idp_jwks_file=$KEYS/idp.jwks" --set idp_issuer=https://idp.postfach.local \
        --set idp_audience=postfach-reader --set idp_development=on --set log_level=warn \
        "${args[@]}" \
        2>"$OUT/reader-$label-$n.log" &
    reader_pid=$!
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    local r0 p0 r1 p1 w0 w1
    w0=$($PSQL -c "SELECT pg_current_wal_lsn()")
    r0=$(ticks "$reader_pid")
    p0=$(pg_ticks)
    "$BIN/postfach-bench" reader --port "$port" --keys "$KEYS" --connections 8 \
        --duration "$SECS" --mode open --label "$label" --ids "$IDS" "$@" >"$OUT/$label-$n.txt" 2>&1
    r1=$(ticks "$reader_pid")
    p1=$(pg_ticks)
    w1=$($PSQL -c "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '$w0')")
    kill -TERM "$reader_pid"
    wait "$reader_pid" 2>/dev/null || true
    reader_pid=
    local req
    req=$(awk '/^  requests:/ {print $2}' "$OUT/$label-$n.txt")
    awk -v r=$((r1 - r0)) -v p=$((p1 - p0)) -v n="${req:-0}" -v t="$TICK" -v w="$w1" 'BEGIN {
        if (n > 0) printf "cpu per request: reader %.0f us, postgres %.0f us; WAL %.1f KiB per request\n",
            r * 1e6 / t / n, p * 1e6 / t / n, w / 1024 / n }' \
        >>"$OUT/$label-$n.txt"
    echo "$label [$settings] run $n:"
    grep -E '^reader .*req/s|^cpu per request' "$OUT/$label-$n.txt" | sed 's/^/  /'
}

ab_rounds one

summary() { # LABEL
    local f=("$OUT/$1"-*.txt) rate p99 rd pg wal
    rate=$(grep -h 'req/s' "${f[@]}" | sed 's/.*: \([0-9]*\) req\/s.*/\1/' | median)
    p99=$(grep -h 'req/s' "${f[@]}" | sed 's/.*p99 \([0-9.]*\) ms.*/\1/' | median)
    rd=$(grep -h '^cpu per request' "${f[@]}" | sed 's/.*reader \([0-9]*\) us.*/\1/' | median)
    pg=$(grep -h '^cpu per request' "${f[@]}" | sed 's/.*postgres \([0-9]*\) us.*/\1/' | median)
    wal=$(grep -h '^cpu per request' "${f[@]}" | sed 's/.*WAL \([0-9.]*\) KiB.*/\1/' | median)
    echo "$1: median $rate req/s, p99 $p99 ms, CPU per request reader $rd us, postgres $pg us, WAL $wal KiB"
}
echo
summary A
summary B
