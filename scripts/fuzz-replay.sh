#!/bin/bash
# Replays every fuzz target's seed corpus under ASan/UBSan (libFuzzer with
# -runs=0 executes each file once).  Part of `make test`.
# Prints "N passed, N failed" (one per target).
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
mkdir -p build
passed=0
failed=0
for src in tests/fuzz/fuzz_*.c; do
    [ -f "$src" ] || continue
    name=$(basename "$src" .c)
    corpus=tests/fuzz/corpus/${name#fuzz_}
    bin=build/fuzz/tests/fuzz/$name
    if ! make -s "$bin" >"build/fuzz-$name-build.log" 2>&1; then
        echo "FAIL: $name does not build"; tail -n 30 "build/fuzz-$name-build.log"
        failed=$((failed + 1)); continue
    fi
    if [ ! -d "$corpus" ] || [ -z "$(ls -A "$corpus")" ]; then
        echo "FAIL: $name has no seed corpus in $corpus"; failed=$((failed + 1)); continue
    fi
    if "$bin" -runs=0 "$corpus" >"build/fuzz-$name.log" 2>&1; then
        echo "ok: $name ($(ls "$corpus" | wc -l) seeds)"; passed=$((passed + 1))
    else
        echo "FAIL: $name"; tail -n 40 "build/fuzz-$name.log"; failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
