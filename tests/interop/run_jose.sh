#!/bin/bash
# Interop of lib/crypto, lib/auth and lib/receipt with node-jose (Debian's
# node-jose package, panva's jose v4): builds tests/interop/pf-jose-tool.c
# against BUILD_DIR/libpfcore.a and runs tests/interop/jose_interop.js.
#   tests/interop/run_jose.sh BUILD_DIR        e.g. build/asan
# Prints "N passed, N failed" last; exits non-zero when anything failed.
# In build/asan the tool runs with ASan/UBSan and leak detection, so a
# leak or sanitizer report in our code fails the case that ran it.
set -u
BUILD=${1:?usage: run_jose.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
MODE=$(basename "$BUILD")
LIB=$BUILD/libpfcore.a

fail() {
    echo "FAIL: $*"
    echo "0 passed, 1 failed"
    exit 1
}

command -v node >/dev/null || fail "node is not installed (apt-get install nodejs node-jose)"
[ -d /usr/share/nodejs/jose ] || fail "node-jose is not installed (apt-get install node-jose)"

# Bring the library up to date; if other areas do not build right now,
# test against the library as it is (and say so).
if ! make -s MODE="$MODE" "$LIB" >"$BUILD.run_jose-make.log" 2>&1; then
    [ -f "$LIB" ] || { cat "$BUILD.run_jose-make.log"; fail "cannot build $LIB"; }
    echo "warning: make $LIB failed, using the existing library" >&2
fi

SAN=""
if [ "$MODE" = asan ]; then
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
fi
OUT=$BUILD/tests/interop
mkdir -p "$OUT"
# shellcheck disable=SC2086,SC2046
cc -std=c11 -D_GNU_SOURCE -g -O1 $SAN -Wall -Wextra -Iinclude -Ilib \
    $(pkg-config --cflags jansson 2>/dev/null) \
    tests/interop/pf-jose-tool.c -o "$OUT/pf-jose-tool" \
    "$LIB" -lssl -lcrypto -ljansson -luuid -lzmq -lpq -lmicrohttpd -lm -pthread ||
    fail "cannot build pf-jose-tool"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/lsan.supp}

WORK=$(mktemp -d /tmp/pf-jose-interop-XXXXXX)
trap 'rm -rf "$WORK"' EXIT
NODE_PATH=/usr/share/nodejs node tests/interop/jose_interop.js "$ROOT/$OUT/pf-jose-tool" "$WORK"
