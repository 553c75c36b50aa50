#!/bin/bash
# Longer runs of the fault tests (tests/e2e/test_fault_*), for `make soak`:
#   scripts/soak.sh BUILD_DIR [MINUTES]
# The same binaries as in `make test`, with the fault phases stretched:
# broker kill -9 every 2 s for MINUTES (default 10) minutes, 10 rounds of
# PostgreSQL immediate stop, and the other scenarios once more.  Prints the
# Jepsen-style lines of every test and "N passed, N failed".
set -u
BUILD=${1:?build dir}
MINUTES=${2:-10}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LOGDIR=$BUILD/soak-logs
mkdir -p "$LOGDIR"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}
export PF_BIN_DIR=$ROOT/$BUILD/bin
export PF_ROOT=$ROOT
export PF_FAULT_SECONDS=$((MINUTES * 60))
export PF_FAULT_DB_ROUNDS=10

PGDIR=$ROOT/var/soak-pg
scripts/pg.sh start "$PGDIR" >"$LOGDIR/pg.log" 2>&1 || { cat "$LOGDIR/pg.log" >&2; exit 1; }
export PF_TEST_PGHOST=$PGDIR/sock
export PF_TEST_PGPORT=$(cat "$PGDIR/port")
trap 'scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1' EXIT

passed=0
failed=0
for t in "$BUILD"/tests/e2e/test_fault_*; do
    [ -x "$t" ] || continue
    name=$(basename "$t")
    "$t" >"$LOGDIR/$name.log" 2>&1
    rc=$?
    grep -a '^fault ' "$LOGDIR/$name.log"
    if [ "$rc" -ne 0 ] || grep -aqE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$LOGDIR/$name.log"; then
        echo "FAIL: $name (log $LOGDIR/$name.log)" >&2
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
