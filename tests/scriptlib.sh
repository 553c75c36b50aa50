# Sourced by the test scripts that drive the built programs from the shell
# (tests/browser/run_*.sh, tests/deploy/run_*.sh): counting, a scratch
# directory and database of their own on the run's PostgreSQL, programs
# started in the background and stopped at the end, free ports, waiting for
# a log line.  The script sets ROOT first and runs from it.
#
#   pf_need TOOL...          fail unless each is installed
#   pf_scratch NAME          W: a fresh directory under var/; DB: a fresh
#                            database; PSQL: psql as the superuser;
#                            everything is removed at exit (with the
#                            processes in PIDS, and pf_extra_cleanup if the
#                            script defines it)
#   pf_stop_all              SIGTERM to PIDS (to the children of each, for
#                            a process started under strace), and wait
#   ok / bad / fail          one check passed / failed / failed and the end
#   pf_end                   the summary line "N passed, N failed"; exit
#                            status 1 when anything failed
#   pf_free_port             a free TCP port on 127.0.0.1
#   pf_wait_for FILE PATTERN SECONDS   until a line of FILE matches

passed=0
failed=0
PIDS=()
ok() { echo "ok: $*"; passed=$((passed + 1)); }
bad() { echo "FAIL: $*"; failed=$((failed + 1)); }
fail() {
    echo "FAIL: $*"
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
}
pf_end() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}

pf_need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || fail "$c is not installed (scripts/deps.sh test installs it)"
    done
}

pf_stop_all() {
    local p
    for p in "${PIDS[@]}"; do
        pkill -TERM -P "$p" 2>/dev/null
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
    PIDS=()
}

pf_cleanup() {
    pf_stop_all
    if declare -F pf_extra_cleanup >/dev/null; then
        pf_extra_cleanup
    fi
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
    rm -rf "$W"
}

pf_scratch() {
    : "${PF_TEST_PGHOST:?PF_TEST_PGHOST is not set (run through scripts/test.sh)}"
    : "${PF_TEST_PGPORT:?PF_TEST_PGPORT is not set}"
    mkdir -p "$ROOT/var"
    W=$(mktemp -d "$ROOT/var/$1-XXXXXX")
    DB=pf_$1_$$
    PSQL=(psql -X -q -h "$PF_TEST_PGHOST" -p "$PF_TEST_PGPORT" -U postgres)
    trap pf_cleanup EXIT
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $DB" >/dev/null || fail "cannot create $DB"
}

pf_free_port() {
    node -e 'const s=require("net").createServer();
s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

pf_wait_for() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}
