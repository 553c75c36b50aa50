#!/bin/bash
# Runs the test suites against a build directory and prints one summary
# line over all of them: "N passed, N failed".
#   scripts/test.sh BUILD_DIR [unit|e2e|interop|browser|deploy|fuzz|all]
# Each cmocka binary's "[  PASSED  ] n test(s)" / "[  FAILED  ] n test(s)"
# lines are summed; a binary that crashes or exits non-zero without a
# FAILED line counts as one failure.  Other suites (layout check, interop
# scripts, fuzz corpus replay) report "N passed, N failed" lines of their own.
set -u
BUILD=${1:?build dir}
WHAT=${2:-all}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LOGDIR=$BUILD/test-logs
mkdir -p "$LOGDIR"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}
export PF_BIN_DIR=$ROOT/$BUILD/bin
export PF_ROOT=$ROOT

case "$WHAT" in
all | unit | e2e | interop | browser | deploy | fuzz) ;;
*)
    echo "scripts/test.sh: unknown suite \"$WHAT\" (unit, e2e, interop, browser, deploy, fuzz or all)" >&2
    echo "0 passed, 1 failed"
    exit 1
    ;;
esac

passed=0
failed=0

# count_cmocka LOG RC NAME
count_cmocka() {
    local log=$1 rc=$2 name=$3 p f
    p=$(grep -aoE '^\[  PASSED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
    f=$(grep -aoE '^\[  FAILED  \] [0-9]+' "$log" | awk '{s+=$4} END {print s+0}')
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        f=1
        echo "FAIL: $name exited with status $rc" >&2
        tail -n 40 "$log" >&2
    elif [ "$f" -ne 0 ]; then
        echo "FAIL: $name" >&2
        grep -a -B2 -A8 -E '^\[  (FAILED|  ERROR)' "$log" | head -n 80 >&2
    fi
    if grep -aqE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log"; then
        echo "FAIL: $name: sanitizer report" >&2
        grep -a -A20 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log" | head -n 60 >&2
        [ "$f" -eq 0 ] && f=1
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    printf '%-40s %4d passed, %d failed\n' "$name" "$p" "$f"
}

# count_plain LOG RC NAME: suites that print "N passed, N failed"
count_plain() {
    local log=$1 rc=$2 name=$3 line p f
    line=$(grep -aE '^[0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1)
    p=$(echo "$line" | awk '{print $1+0}')
    f=$(echo "$line" | awk '{print $3+0}')
    if [ -z "$line" ] || { [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; }; then
        f=$((f + 1))
        echo "FAIL: $name exited with status $rc" >&2
        tail -n 40 "$log" >&2
    elif [ "$f" -ne 0 ]; then
        echo "FAIL: $name" >&2
        grep -a 'FAIL' "$log" | head -n 40 >&2
    fi
    passed=$((passed + p))
    failed=$((failed + f))
    printf '%-40s %4d passed, %d failed\n' "$name" "$p" "$f"
}

# run_cmocka_dir BUILT_DIR SOURCE_DIR: every tests/<kind>/test_*.c must
# have its binary; one that is missing counts as a failure, not as nothing
run_cmocka_dir() {
    local dir=$1 src=$2 c t name rc
    for c in "$src"/test_*.c; do
        [ -e "$c" ] || continue
        name=$(basename "$c" .c)
        t=$dir/$name
        # a hung test is a failure, not a CI run that never ends
        if [ ! -x "$t" ]; then
            echo "FAIL: $name: no binary $t (not built?)" >&2
            failed=$((failed + 1))
            printf '%-40s %4d passed, %d failed\n' "$name" 0 1
            continue
        fi
        timeout -k 10 "${PF_TEST_TIMEOUT:-600}" "$t" >"$LOGDIR/$name.log" 2>&1
        rc=$?
        [ "$rc" -eq 124 ] && echo "FAIL: $name timed out after ${PF_TEST_TIMEOUT:-600} s" >&2
        count_cmocka "$LOGDIR/$name.log" "$rc" "$name"
    done
}

if [ "$WHAT" = all ] || [ "$WHAT" = unit ]; then
    scripts/check-layout.sh >"$LOGDIR/layout.log" 2>&1
    count_plain "$LOGDIR/layout.log" $? layout
    run_cmocka_dir "$BUILD/tests/unit" tests/unit
fi

if [ "$WHAT" = all ] || [ "$WHAT" = fuzz ]; then
    scripts/fuzz-replay.sh "$BUILD" >"$LOGDIR/fuzz-replay.log" 2>&1
    count_plain "$LOGDIR/fuzz-replay.log" $? fuzz-replay
fi

if [ "$WHAT" = all ] || [ "$WHAT" = e2e ] || [ "$WHAT" = interop ] || [ "$WHAT" = browser ] ||
    [ "$WHAT" = deploy ]; then
    # One PostgreSQL cluster per run for the e2e suites (its own directory, so
    # runs side by side do not stop each other's); each test makes its own database.
    PGDIR=$ROOT/var/test-pg-$$
    scripts/pg.sh start "$PGDIR" >"$LOGDIR/pg.log" 2>&1 || { cat "$LOGDIR/pg.log" >&2; echo "0 passed, 1 failed"; exit 1; }
    export PF_TEST_PGHOST=$PGDIR/sock
    export PF_TEST_PGPORT=$(cat "$PGDIR/port")
    trap 'scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1; rm -rf "$PGDIR"' EXIT
    if [ "$WHAT" = all ] || [ "$WHAT" = e2e ]; then
        run_cmocka_dir "$BUILD/tests/e2e" tests/e2e
    fi
    if [ "$WHAT" = all ] || [ "$WHAT" = interop ]; then
        for s in tests/interop/run_*.sh; do
            [ -e "$s" ] || continue
            name=interop/$(basename "$s" .sh)
            bash "$s" "$BUILD" >"$LOGDIR/$(basename "$s").log" 2>&1
            count_plain "$LOGDIR/$(basename "$s").log" $? "$name"
        done
    fi
    # the web page in a browser, and the systemd deployment
    for kind in browser deploy; do
        [ "$WHAT" = all ] || [ "$WHAT" = "$kind" ] || continue
        for s in tests/$kind/run_*.sh; do
            [ -e "$s" ] || continue
            name=$kind/$(basename "$s" .sh)
            timeout -k 10 300 bash "$s" "$BUILD" >"$LOGDIR/$kind-$(basename "$s").log" 2>&1
            count_plain "$LOGDIR/$kind-$(basename "$s").log" $? "$name"
        done
    done
fi

if [ $((passed + failed)) -eq 0 ]; then
    echo "FAIL: no test ran" >&2
    failed=1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
