#!/bin/sh
# Keeps the layout telling the architecture: only lib/crypto includes
# OpenSSL, only lib/store includes libpq, only lib/reader libmicrohttpd,
# and include/postfach/ holds the public client API only.
cd "$(dirname "$0")/.." || exit 1
pass=0
fail=0
check() { # description, offending-lines
    if [ -n "$2" ]; then
        echo "FAIL: $1:"; echo "$2"; fail=$((fail + 1))
    else
        echo "ok: $1"; pass=$((pass + 1))
    fi
}
check "openssl only in lib/crypto" "$(grep -rlE '#include <openssl/' cmd lib include tests/unit tests/e2e 2>/dev/null | grep -v '^lib/crypto/')"
check "libpq only in lib/store" "$(grep -rlE '#include <(libpq-fe|postgresql/libpq-fe)\.h>' cmd lib include tests/unit tests/e2e 2>/dev/null | grep -v '^lib/store/' | grep -v '^tests/e2e/harness')"
check "libmicrohttpd only in lib/reader" "$(grep -rlE '#include <microhttpd\.h>' cmd lib include 2>/dev/null | grep -v '^lib/reader/')"
check "no printing from the client library" "$(grep -nE '\b(printf|fprintf|puts|perror)\(' lib/client/*.c 2>/dev/null)"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
