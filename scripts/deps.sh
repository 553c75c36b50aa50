#!/bin/sh
# Install the Debian packages Postfach needs, if any are missing.
# Runs apt-get only when something is absent, so repeated calls are cheap.
#   scripts/deps.sh          what building and running need
#   scripts/deps.sh test     and what only the tests need: Chromium and its
#                            WebDriver for the web page's test (tests/browser),
#                            systemd-analyze, strace and docker-compose for the
#                            deployments' (tests/deploy)
set -eu

PKGS="build-essential pkg-config libzmq3-dev libpq-dev libssl-dev uuid-dev libjansson-dev
libmicrohttpd-dev libcmocka-dev postgresql-15 postgresql-client-15 clang libclang-rt-14-dev
nodejs node-jose procps util-linux acl"
if [ "${1:-}" = test ]; then
    PKGS="$PKGS chromium chromium-driver systemd strace docker-compose"
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done
# nodejs may come from another source than Debian's archive; accept any working node.
case " $missing " in *" nodejs "*) command -v node >/dev/null 2>&1 && missing=$(echo "$missing" | sed 's/ nodejs//');; esac

[ -z "$missing" ] && exit 0

echo "deps: installing:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "deps: need root (or sudo) to install:$missing" >&2; exit 1; }
    SUDO=sudo
fi
$SUDO apt-get update -qq
# postgresql-15's package would create and start a system cluster; we run our own under var/.
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
