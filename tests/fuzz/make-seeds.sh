#!/bin/bash
# Regenerates the seed corpora of fuzz_jwe, fuzz_jws, fuzz_jwk,
# fuzz_notice, fuzz_kek and fuzz_zap (tests/fuzz/make_seeds.c).  The seeds
# are checked in; run this only to change them, then commit the result.
# Arguments name the corpora to write (e.g. `make-seeds.sh kek zap`); the
# randomised ones (JWE, signatures, wrapped keys) change on every run.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
make -s MODE=release build/release/libpfcore.a
mkdir -p build/release/tests/fuzz tests/fuzz/corpus/{jwe,jws,jwk,notice,kek,zap}
cc -std=c11 -D_GNU_SOURCE -Iinclude -Ilib -Wall -Wextra -O1 -g \
    $(pkg-config --cflags jansson) tests/fuzz/make_seeds.c -o build/release/tests/fuzz/make_seeds \
    build/release/libpfcore.a -lzmq -lpq -lssl -lcrypto -luuid -ljansson -lmicrohttpd -lm
build/release/tests/fuzz/make_seeds tests/fuzz/corpus "$@"
