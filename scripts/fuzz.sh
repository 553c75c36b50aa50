#!/bin/bash
# `make fuzz`: fuzzes each target for SECONDS (default 60), starting from
# its seed corpus; new inputs go to var/fuzz/<target>/ (not the repo).
# A crash leaves its input in var/fuzz/ and fails the run.
set -u
SECONDS_PER=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
rc=0
ran=0
crashed=0
for src in tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    seeds=tests/fuzz/corpus/${name#fuzz_}
    work=var/fuzz/${name#fuzz_}
    mkdir -p "$work"
    echo "fuzzing $name for ${SECONDS_PER}s"
    if ! build/fuzz/tests/fuzz/$name -max_total_time="$SECONDS_PER" -artifact_prefix="$work/" \
        -print_final_stats=1 "$work" "$seeds" >"$work/log" 2>&1; then
        echo "FAIL: $name crashed; see $work/log"; tail -n 30 "$work/log"; rc=1
        crashed=$((crashed + 1))
    else
        grep -E 'stat::number_of_executed_units' "$work/log" | sed "s/^/  $name /"
    fi
    ran=$((ran + 1))
done
echo "fuzz: $ran targets, ${SECONDS_PER} s each, $crashed crashed"
exit $rc
