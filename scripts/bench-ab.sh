#!/bin/bash
# A/B of two broker configurations on the kept bench database, in
# alternating runs (this VM's speed drifts by tens of percent within
# minutes, so only runs side by side compare):
#
#   BENCH_KEEP=1 BENCH_ONLY=a make bench     # once: database, keys, senders, mailboxes
#   scripts/bench-ab.sh [-n ROUNDS] [-s SECONDS] "SETTINGS A" "SETTINGS B" [-- SEND ARGS...]
#
# SETTINGS are broker --set values separated by spaces ("" for the
# defaults), e.g.  scripts/bench-ab.sh "receipt_direct=on" "receipt_direct=off"
# login=NAME among the SETTINGS picks the daemon's database login (default:
# make bench's own login for it; login=postgres runs it as the superuser).
# pg.NAME=VALUE sets a PostgreSQL parameter for that side only, e.g.
# "pg.wal_compression=lz4" "" (ALTER SYSTEM and a reload, reset afterwards).
# or, at half rate:  ... -- --rate 1900.  Each round runs A, then B (the
# order swaps every round), each time with a fresh broker after a
# CHECKPOINT, and prints postfach-bench's CPU-per-notice, WAL, receipt and
# summary lines (the ceiling is left out: --ceiling-max 1, so ignore its
# ratio); the end prints the median of each figure for A and B.
# BIN_A and BIN_B (directories with postfach-broker) compare two builds,
# e.g. a worktree of the previous commit:  BIN_B=/tmp/old/build/release/bin
# With AB_BENCH=1 each side also runs the postfach-bench of its build (for
# changes to the client library, which the bench sends through).
# scripts/bench-ab.sh "" ""  (the database must carry the newer schema).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=$ROOT/build/release/bin
KEYS=$ROOT/var/bench/keys
OUT=$ROOT/var/bench/ab
. scripts/ab-lib.sh
ab_args 2,16p "$@"
[ -d "$ROOT/var/bench-pg/data" ] && [ -f "$KEYS/broker.curve" ] ||
    { echo "bench-ab: no kept bench database; run BENCH_KEEP=1 BENCH_ONLY=a make bench first" >&2; exit 1; }
ab_cluster
mkdir -p "$OUT"
rm -f "$OUT"/*.txt

broker_pid=
trap '[ -n "$broker_pid" ] && kill -TERM "$broker_pid" 2>/dev/null; wait 2>/dev/null; ab_pg_reset' EXIT

one() { # LABEL SETTINGS RUN-NUMBER SEND-ARGS...
    local label=$1 settings=$2 n=$3
    shift 3
    local port=$((20000 + RANDOM % 30000)) args=() bin=$BIN
    [ "$label" = A ] && bin=${BIN_A:-$BIN}
    [ "$label" = B ] && bin=${BIN_B:-$BIN}
    ab_daemon broker "$settings"
    args=("${DAEMON_ARGS[@]}")
    "$bin/postfach-broker" --set "db=$DAEMON_DB" --set "bind=tcp://127.0.0.1:$port" \
        --set "curve_secret_file=$KEYS/broker.curve" --set "receipt_key_file=$KEYS/receipt.jwk" \
        --set log_level=warn "${args[@]}" 2>"$OUT/broker-$label-$n.log" &
    broker_pid=$!
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
        sleep 0.05
    done
    $PSQL -c CHECKPOINT >/dev/null
    local bench=$BIN
    [ "${AB_BENCH:-0}" = 1 ] && bench=$bin
    "$bench/postfach-bench" send --broker "tcp://127.0.0.1:$port" --broker-key "$KEYS/broker.curve.pub" \
        --keys "$KEYS" --db "$DB" --broker-pid "$broker_pid" --pg-pid "$PG_PID" --senders 4 \
        --window 64 --mailboxes 1000 --ceiling-max 1 --duration "$SECS" "$@" \
        >"$OUT/$label-$n.txt" 2>&1
    kill -TERM "$broker_pid"
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
    echo "$label [$settings] run $n:"
    grep -E 'cpu per notice|delivered receipts:|wal per notice' "$OUT/$label-$n.txt" | head -n 3 | sed 's/^ */  /'
    grep '^postfach:' "$OUT/$label-$n.txt" | tail -n 1 | sed 's/^/  /'
}

ab_rounds one

summary() { # LABEL
    local f=("$OUT/$1"-*.txt)
    local rate cpu pg ack99 rc50 wal
    rate=$(grep -h '^postfach:' "${f[@]}" | awk '{print $4}' | median)
    ack99=$(grep -h '^postfach:' "${f[@]}" | sed 's/.*p99 \([0-9.]*\) ms.*/\1/' | median)
    cpu=$(grep -h 'cpu per notice' "${f[@]}" | sed 's/.*together \([0-9]*\) us.*/\1/' | median)
    pg=$(grep -h 'cpu per notice' "${f[@]}" | sed 's/.*postgres \([0-9]*\) us.*/\1/' | median)
    rc50=$(grep -h 'delivered receipts:' "${f[@]}" | sed 's/.*latency p50 \([0-9.]*\) ms.*/\1/' | median)
    wal=$(grep -h 'wal per notice:' "${f[@]}" | sed -n 's/.*notice: \([0-9]*\) bytes.*/\1/p' | median)
    echo "$1: median $rate notices/s, ACK p99 $ack99 ms, CPU $cpu us/notice (postgres $pg), receipt p50 $rc50 ms, WAL ${wal:-?} B per notice"
}
echo
summary A
summary B
