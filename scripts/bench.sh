#!/bin/bash
# `make bench`: the benchmarks of issue 5 on this machine, side by side with
# the ceiling measured in the same run.  Starts its own PostgreSQL
# (var/bench-pg), a fresh database, keys, senders and mailboxes, the release
# broker and reader on free ports (logs under var/bench/), runs:
#   (a) 2 KiB notices, 1 recipient, closed loop, maximum rate
#   (b) half that rate, open loop: ACK latency
#   (c) 200 KiB attachments: MB/s stored
#   (e) growth: 1,000 -> 1,000,000 mailboxes (making them takes about 2
#       minutes); + preloaded copies (1 M, or 10 M with BENCH_BIG=1)
#   (d) reader: open (P-256: first retrievals, then the same again;
#       RSA-3072) and list 50, with those copies stored
#   (f) broker RSS over a long run (BENCH_LONG=1: 1 M notices; otherwise
#       the RSS figures of (a))
# and ends with the summary line of (a).  Everything stops on exit and on
# Ctrl-C.  Knobs (environment): BENCH_SECONDS (per send scenario, default
# 20), BENCH_SENDERS (default 4) and BENCH_WINDOW (notices in flight per
# sender, default 64), BENCH_MAILBOXES (default 1000000), BENCH_PRELOAD (copies, default 1000000),
# BENCH_SHARED_BUFFERS (PostgreSQL's buffer pool, default 1GB: it holds
# the key tables of a million mailboxes, 440 MB), BENCH_HUGE_PAGES (on:
# the pool in 2 MB pages, reserved by scripts/pg.sh as root and given back
# at the end; off: 4 KiB pages, each first touch a page fault of up to
# 60 us on this VM; see docs/architecture.md),
# BENCH_SUPERUSER=1 (broker and reader as the superuser, not their logins),
# BENCH_BIG=1, BENCH_LONG=1, BENCH_KEEP=1 (keep var/bench-pg afterwards),
# BENCH_ONLY="a c" (run only those scenarios; (a) always runs: the others
# are measured against it).
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=$ROOT/build/release/bin
OUT=$ROOT/var/bench
PGDIR=$ROOT/var/bench-pg
KEYS=$OUT/keys
SECS=${BENCH_SECONDS:-20}
SENDERS=${BENCH_SENDERS:-4}
WINDOW=${BENCH_WINDOW:-64}
PRELOAD=${BENCH_PRELOAD:-1000000}
MANY=${BENCH_MAILBOXES:-1000000}
[ "${BENCH_BIG:-0}" = 1 ] && PRELOAD=10000000

mkdir -p "$OUT"
rm -rf "$KEYS" "$OUT"/*.txt "$OUT"/*.ids "$OUT"/*.log "$OUT"/*.pg[01]

broker_pid=
reader_pid=
stopped=no
cleanup() {
    [ "$stopped" = yes ] && return
    stopped=yes
    trap - INT TERM EXIT
    [ -n "$broker_pid" ] && kill -TERM "$broker_pid" 2>/dev/null || true
    [ -n "$reader_pid" ] && kill -TERM "$reader_pid" 2>/dev/null || true
    [ -n "$broker_pid" ] && wait "$broker_pid" 2>/dev/null || true
    [ -n "$reader_pid" ] && wait "$reader_pid" 2>/dev/null || true
    scripts/pg.sh stop "$PGDIR" || true
    # the bench database can be tens of GB (BENCH_BIG): kept only on request
    [ "${BENCH_KEEP:-0}" = 1 ] || rm -rf "$PGDIR"
}
trap cleanup EXIT
trap 'echo "bench: interrupted" >&2; cleanup; exit 130' INT TERM

free_port() {
    local p
    while :; do
        p=$((20000 + RANDOM % 30000))
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
    done
}

wait_ready() { # PORT PID NAME LOG: the daemons log at warn level (a line per
    # ACK at info costs throughput), so readiness is "the port accepts"
    for _ in $(seq 1 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        kill -0 "$2" 2>/dev/null || { echo "bench: $3 exited; see $4" >&2; tail -n 20 "$4" >&2; return 1; }
        sleep 0.05
    done
    echo "bench: $3 not ready after 10 s; see $4" >&2
    return 1
}

echo "bench: PostgreSQL under $PGDIR"
export PG_SHARED_BUFFERS=${BENCH_SHARED_BUFFERS:-1GB} PG_HUGE_PAGES=${BENCH_HUGE_PAGES:-on}
scripts/pg.sh start "$PGDIR" >/dev/null
PGHOST=$PGDIR/sock
PGPORT=$(cat "$PGDIR/port")
PSQL="psql -h $PGHOST -p $PGPORT -U postgres -v ON_ERROR_STOP=1 -qtA"
echo "bench: shared_buffers $($PSQL -d postgres -c "SHOW shared_buffers"), huge_pages $($PSQL -d postgres -c "SHOW huge_pages")"
$PSQL -d postgres -c "DROP DATABASE IF EXISTS postfach_bench" >/dev/null
$PSQL -d postgres -c "CREATE DATABASE postfach_bench" >/dev/null
DB="host=$PGHOST port=$PGPORT dbname=postfach_bench user=postgres"
export POSTFACH_DB=$DB POSTFACH_KEYS=$KEYS
"$BIN/postfach-ctl" migrate --sql-dir "$ROOT/sql" >/dev/null
"$BIN/postfach-ctl" keys init >/dev/null
# the daemons log in as in service: their own logins in the groups of
# sql/0008, so row-level security (sql/0017) and the grants cost what they
# cost there (the local cluster trusts its socket; the password is unused).
# BENCH_SUPERUSER=1 runs them as the superuser instead, for a comparison.
BROKER_DB=$DB
READER_DB=$DB
if [ "${BENCH_SUPERUSER:-0}" != 1 ]; then
    head -c 24 /dev/urandom | base64 > "$OUT/login.pw"
    "$BIN/postfach-ctl" role login postfach_bench_broker broker --password-file "$OUT/login.pw" >/dev/null
    "$BIN/postfach-ctl" role login postfach_bench_reader reader --password-file "$OUT/login.pw" >/dev/null
    BROKER_DB="host=$PGHOST port=$PGPORT dbname=postfach_bench user=postfach_bench_broker"
    READER_DB="host=$PGHOST port=$PGPORT dbname=postfach_bench user=postfach_bench_reader"
fi
echo "bench: broker and reader log in as $(awk '{print $NF}' <<<"$BROKER_DB"), $(awk '{print $NF}' <<<"$READER_DB")"

# the computation no design can leave out, timed alone while the machine is
# quiet: the floor the scenarios are compared with
echo "bench: floor"
"$BIN/postfach-bench" floor | tee "$OUT/floor.txt"

echo "bench: senders and mailboxes"
BLOCKING=16 # senders of the comparison run with one notice in flight each
"$BIN/postfach-bench" setup --db "$DB" --keys "$KEYS" --senders $((SENDERS > BLOCKING ? SENDERS : BLOCKING)) \
    --mailboxes 1000 --threads 2
"$BIN/postfach-bench" setup --db "$DB" --keys "$KEYS" --senders 0 --mailboxes 20 --prefix brsa- \
    --key-type rsa3072 --threads 2

BROKER_PORT=$(free_port)
READER_PORT=$(free_port)
"$BIN/postfach-broker" --set "db=$BROKER_DB" --set "bind=tcp://127.0.0.1:$BROKER_PORT" \
    --set "curve_secret_file=$KEYS/broker.curve" --set "receipt_key_file=$KEYS/receipt.jwk" \
    --set log_level=${BENCH_BROKER_LOG:-warn} 2>"$OUT/broker.log" &
broker_pid=$!
wait_ready "$BROKER_PORT" "$broker_pid" broker "$OUT/broker.log"
"$BIN/postfach-reader" --set "db=$READER_DB" --set listen_address=127.0.0.1 --set "listen_port=$READER_PORT" \
    --set "kek_file=$KEYS/kek" --set "receipt_key_file=$KEYS/receipt.jwk" \
    --set "idp_jwks_file=$KEYS/idp.jwks" --set idp_issuer=https://idp.postfach.local \
    --set idp_audience=postfach-reader --set idp_development=on --set log_level=warn 2>"$OUT/reader.log" &
reader_pid=$!
wait_ready "$READER_PORT" "$reader_pid" reader "$OUT/reader.log"
echo "bench: broker pid $broker_pid on $BROKER_PORT, reader pid $reader_pid on $READER_PORT"

PG_PID=$(head -n 1 "$PGDIR/data/postmaster.pid" 2>/dev/null || echo 0)
SEND=("$BIN/postfach-bench" send --broker "tcp://127.0.0.1:$BROKER_PORT" --broker-key "$KEYS/broker.curve.pub"
      --keys "$KEYS" --db "$DB" --broker-pid "$broker_pid" --pg-pid "$PG_PID" --senders "$SENDERS"
      --window "$WINDOW" --disk-probe "$PGDIR/disk-probe")
copies() { $PSQL -d postfach_bench -c "SELECT count(*) FROM message"; }
field() { # FILE AWK-PROGRAM on the summary line
    grep '^postfach:' "$1" | tail -n 1 | awk "$2"
}

want() { # NAME: is this scenario selected by BENCH_ONLY?
    [ -z "${BENCH_ONLY:-}" ] || [ "$1" = a ] || [[ " $BENCH_ONLY " == *" $1 "* ]] ||
        { [ "$1" = d0 ] && [[ " $BENCH_ONLY " == *" d2 "* ]]; } || # d2 opens what d0 sent
        { [ "$1" = d1r ] && [[ " $BENCH_ONLY " == *" d1 "* ]]; } # d1r reopens what d1 opened
}

pg_ticks() { # "WHO TICKS" per PostgreSQL process, then "total TICKS" for the
    # whole tree (the postmaster's own and reaped children's time included).
    # WHO is the session's application_name (the programs name their
    # sessions, lib/store/store.c) or the process's kind (walwriter, ...).
    local pid who t
    $PSQL -d postfach_bench -F ' ' -c "SELECT pid, coalesce(nullif(application_name, ''),
        replace(backend_type, ' ', '-')) FROM pg_stat_activity" 2>/dev/null |
        while read -r pid who; do
            t=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null) && echo "$pid $who $t"
        done
    t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$PG_PID/stat" 2>/dev/null || echo 0)
    for pid in $(pgrep -P "$PG_PID" 2>/dev/null); do
        t=$((t + $(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "0 total $t"
}

pg_split() { # BEFORE AFTER: PostgreSQL's CPU time in between, by whose session
    # it was: sessions alive at the end (one that began in between, such
    # as a pool's connection opened on demand, counts from zero); the
    # rest, autovacuum workers and sessions that ended in between (the
    # bench's own ceiling), is "other"
    awk 'NR == FNR { t0[$1 " " $2] = $3; next }
         { k = $1 " " $2; d = $3 - (k in t0 ? t0[k] : 0); if ($2 == "total") tot = d; else { by[$2] += d; known += d } }
         END {
             if (tot <= 0) exit
             by["other"] = tot - known
             n = 0
             for (w in by) if (by[w] * 100 >= tot) keys[++n] = w
             for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (by[keys[j]] > by[keys[i]]) { k = keys[i]; keys[i] = keys[j]; keys[j] = k }
             line = ""
             for (i = 1; i <= n; i++) line = line sprintf("%s%s %d%%", i > 1 ? ", " : "", keys[i], by[keys[i]] * 100 / tot)
             printf "  postgres cpu by session: %s (of %.1f s)\n", line, tot / hz
         }' hz="$(getconf CLK_TCK)" "$1" "$2"
}

run() { # NAME ARGS... : runs one scenario, prints and keeps its output
    local name=$1
    shift
    want "$name" || return 0
    echo
    echo "== $name (copies stored before: $(copies))"
    # each scenario starts with the dirty pages of the previous one
    # written out, so that its checkpoint does not land in this one's time
    $PSQL -d postfach_bench -c CHECKPOINT >/dev/null
    pg_ticks > "$OUT/$name.pg0"
    set -o pipefail
    "$@" | tee "$OUT/$name.txt" || echo "bench: scenario $name failed (exit status $?)" >&2
    set +o pipefail
    pg_ticks > "$OUT/$name.pg1"
    pg_split "$OUT/$name.pg0" "$OUT/$name.pg1" | tee -a "$OUT/$name.txt"
}

run a "${SEND[@]}" --label a-2k-closed --duration "$SECS" --ids-out "$OUT/a.ids" --ids-max 60000
RATE_A=$(field "$OUT/a.txt" '{print $4}')
HALF=$(awk -v r="$RATE_A" 'BEGIN {printf "%d", r / 2}')
[ "$HALF" -ge 1 ] || HALF=1

run b "${SEND[@]}" --label b-2k-open-half --rate "$HALF" --duration "$SECS"

run c "${SEND[@]}" --window 8 --label c-200k-attachment --body 2048 --attachment 204800 \
    --duration "$SECS"

# growth in mailboxes: (a) ran against 1,000 of them
if want e1; then
    echo
    echo "bench: $MANY mailboxes"
    "$BIN/postfach-bench" setup --db "$DB" --keys "$KEYS" --senders 0 --mailboxes "$MANY" --threads 8
fi
run e1 "${SEND[@]}" --label e1-many-mailboxes --mailboxes "$MANY" --duration "$SECS"

if want e2 || want d3; then
    echo
    echo "bench: preloading $PRELOAD copies over 1,000 mailboxes"
    "$BIN/postfach-bench" preload --db "$DB" --copies "$PRELOAD" --mailboxes 1000 --body 2048 --threads 2
    $PSQL -d postfach_bench -c "VACUUM ANALYZE message" >/dev/null
fi
run e2 "${SEND[@]}" --label e2-preloaded --duration "$SECS"

# reader: RSA notices first (the P-256 ones come from (a))
run d0 "${SEND[@]}" --window 16 --label d0-rsa-notices --prefix brsa- --mailboxes 20 --count 4000 \
    --ids-out "$OUT/rsa.ids"
READ=("$BIN/postfach-bench" reader --port "$READER_PORT" --keys "$KEYS" --connections 8 --duration 10
    --reader-pid "$reader_pid" --pg-pid "$PG_PID")
run d1 "${READ[@]}" --mode open --label p256 --ids "$OUT/a.ids"
# the same notices opened again: decrypted as before, but nothing to record
# (no read receipt, no write, no commit); only the ids d1 got to
if want d1 && [ -f "$OUT/d1.txt" ]; then
    OPENED=$(awk '/^  requests:/ {print $2}' "$OUT/d1.txt")
    [ "${OPENED:-0}" -ge 1 ] && run d1r "${READ[@]}" --mode open --label p256-again \
        --ids "$OUT/a.ids" --ids-max "$OPENED"
fi
run d2 "${READ[@]}" --mode open --label rsa3072 --ids "$OUT/rsa.ids"
run d3 "${READ[@]}" --mode list --label p256 --mailboxes 1000

# comparison: (a) with blocking senders (one notice in flight each), as a
# procedure that uses pf_client_send would load the broker
run x "${SEND[@]}" --senders "$BLOCKING" --window 1 --label x-2k-closed-blocking --duration 10

if [ "${BENCH_LONG:-0}" = 1 ]; then
    run f "${SEND[@]}" --label f-long-1M --count 1000000 --ceiling-max 200000 --progress
fi

echo
echo "== figures (ratios to the same-run ceiling)"
for s in a b c e1 e2 x f; do
    [ -f "$OUT/$s.txt" ] || continue
    printf '%-3s %s\n' "$s" "$(grep '^postfach:' "$OUT/$s.txt" | tail -n 1)"
    grep -E '^  (throughput|broker|cpu per notice|wal per notice|disk|postgres cpu by session):' "$OUT/$s.txt" | sed 's/^/    /'
done
for s in d1 d1r d2 d3; do
    [ -f "$OUT/$s.txt" ] || continue
    printf '%-3s %s\n' "$s" "$(grep '^reader ' "$OUT/$s.txt" | tail -n 1)"
    grep -E '^  (cpu per request|postgres cpu by session):' "$OUT/$s.txt" | sed 's/^/    /'
done
growth() { # SCENARIO: its notices/s relative to (a); "not run" when BENCH_ONLY left it out
    [ -f "$OUT/$1.txt" ] || { echo "not run"; return; }
    awk -v a="$(field "$OUT/a.txt" '{print $4}')" -v e="$(field "$OUT/$1.txt" '{print $4}')" \
        'BEGIN { if (a > 0) printf "%.2f", e / a; else print "n/a" }'
}
echo "growth: $MANY mailboxes / 1,000: $(growth e1); with $PRELOAD more copies / without: $(growth e2)"
echo "copies stored at the end: $(copies)"
# the bound: crypto floor + the database's CPU for one stored row (the
# ceiling's), both per notice, over the cores; (a) against it
send_floor=$(sed -n 's/^floor send: .* = \([0-9]*\) us per notice.*/\1/p' "$OUT/floor.txt")
row_cpu=$(sed -n 's/.*; postgres \([0-9]*\) us CPU per row.*/\1/p' "$OUT/a.txt" | tail -n 1)
if [ -n "$send_floor" ] && [ -n "$row_cpu" ]; then
    awk -v f="$send_floor" -v r="$row_cpu" -v c="$(nproc)" -v a="$(field "$OUT/a.txt" '{print $4}')" \
        'BEGIN { b = c * 1e6 / (f + r); printf "bound: crypto floor %d us + database %d us per stored row = %d us per notice; %d cores: at most %.0f notices/s; (a) reached %.2f of that\n", f, r, f + r, c, b, a / b }'
fi
grep '^postfach:' "$OUT/a.txt" | tail -n 1
