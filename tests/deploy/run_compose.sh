#!/bin/bash
# The docker compose deployment without docker: docker-compose.yml is
# checked by `docker-compose config`, and the init every `docker compose up`
# runs (scripts/docker-init.sh, under scripts/docker-entry.sh as in the
# image) runs against the run's PostgreSQL (PF_TEST_PGHOST, PF_TEST_PGPORT)
# with the programs of BUILD_DIR: twice, as a restart does.  Then the logins
# it made are used as the services use them.
#   tests/deploy/run_compose.sh BUILD_DIR      e.g. build/asan
# Prints "ok: ..." or "FAIL: ..." per check and "N passed, N failed" last.
set -u
BUILD=${1:?usage: run_compose.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=$ROOT/$BUILD/bin

. tests/scriptlib.sh
pf_need docker-compose psql
pf_scratch compose
LOGINS="postfach_broker_1 postfach_reader_1 postfach_admin_1 postfach_audit_1"
# the init's logins are global to the cluster
pf_extra_cleanup() {
    local l
    "${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1
    for l in $LOGINS; do
        "${PSQL[@]}" -d postgres -c "DROP ROLE IF EXISTS $l" >/dev/null 2>&1
    done
}

# --- docker-compose.yml ---------------------------------------------------

# compose reads .env and the secrets beside the file: a copy with its own
mkdir -p "$W/compose/secrets" "$W/compose/scripts"
cp docker-compose.yml "$W/compose/"
echo '{"keys":[]}' >"$W/compose/idp.jwks"
if (cd "$W/compose" && POSTFACH_IDP_ISSUER=https://id.example.de POSTFACH_IDP_AUDIENCE=postfach \
    POSTFACH_IDP_JWKS=./idp.jwks docker-compose config >"$W/config.yml" 2>"$W/config.log"); then
    ok "docker-compose config accepts docker-compose.yml"
else
    bad "docker-compose config: $(cat "$W/config.log")"
fi
# every secret a service names is declared, and the README's loop makes
# every declared one
declared=$(sed -n '/^secrets:/,$p' docker-compose.yml | grep -oE '^  [a-z_]+:' | tr -d ' :' | sort)
made=$(sed -n '/for s in db_password/,/done/p' README.md | grep -oE '[a-z_]+_password' | sort -u)
if [ -n "$declared" ] && [ "$declared" = "$made" ]; then
    ok "the README makes every secret compose declares: $(echo $declared)"
else
    bad "secrets declared: $(echo $declared); made by the README: $(echo $made)"
fi
# without the identity provider compose refuses, naming it
if (cd "$W/compose" && docker-compose config >/dev/null 2>"$W/config-noidp.log"); then
    bad "docker-compose config without the identity provider's settings passed"
elif grep -q 'POSTFACH_IDP' "$W/config-noidp.log"; then
    ok "without the identity provider compose refuses: $(head -c 120 "$W/config-noidp.log")"
else
    bad "compose refused, but not naming POSTFACH_IDP_*: $(cat "$W/config-noidp.log")"
fi

# --- the init, twice ------------------------------------------------------

mkdir -p "$W/secrets"
for s in db_password broker_db_password reader_db_password admin_db_password audit_db_password; do
    head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$W/secrets/$s"
done
run_init() {
    env PATH="$BIN:$PATH" POSTFACH_DB="host=$PF_TEST_PGHOST port=$PF_TEST_PGPORT dbname=$DB user=postgres" \
        POSTFACH_DB_PASSWORD_FILE="$W/secrets/db_password" POSTFACH_SQL_DIR="$ROOT/sql" \
        POSTFACH_KEYS="$W/keys" POSTFACH_BROKER_KEYS="$W/broker-keys" \
        POSTFACH_READER_KEYS="$W/reader-keys" POSTFACH_SECRETS="$W/secrets" \
        POSTFACH_USER="$(id -un)" POSTFACH_INIT_TRIES=3 \
        sh scripts/docker-entry.sh sh scripts/docker-init.sh
}
if run_init >"$W/init-1.log" 2>&1 && run_init >"$W/init-2.log" 2>&1; then
    ok "the init runs, and again (as every docker compose up runs it)"
else
    bad "the init: $(tail -n 20 "$W"/init-*.log)"
fi
members=$("${PSQL[@]}" -d "$DB" -tAc "SELECT r.rolname || ':' || g.rolname FROM pg_auth_members m
    JOIN pg_roles r ON r.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
    WHERE r.rolname LIKE 'postfach\_%\_1' ORDER BY 1" | tr '\n' ' ')
want="postfach_admin_1:postfach_admin postfach_audit_1:postfach_auditor postfach_broker_1:postfach_broker postfach_reader_1:postfach_reader "
if [ "$members" = "$want" ]; then
    ok "the init's logins, each in its one group: $members"
else
    bad "logins: got \"$members\", want \"$want\""
fi
listing() { (cd "$1" 2>/dev/null && stat -c '%n %a' * | sort | tr '\n' ' '); }
b=$(listing "$W/broker-keys")
r=$(listing "$W/reader-keys")
if [ "$b" = "broker.curve 600 receipt.jwk 600 " ] && [ "$r" = "kek 600 receipt.jwk 600 " ] &&
    [ "$(stat -c %a "$W/broker-keys")" = 700 ] && [ ! -e "$W/keys/idp.jwk" ]; then
    ok "the broker's volume holds no KEK, the reader's no CURVE key, no development identity key"
else
    bad "key volumes: broker \"$b\", reader \"$r\"; idp.jwk: $(ls "$W/keys")"
fi

# --- the logins as the services use them ---------------------------------

conn() { echo "host=$PF_TEST_PGHOST port=$PF_TEST_PGPORT dbname=$DB user=$1"; }
if "$BIN/postfach-ctl" --db "$(conn postfach_admin_1)" --keys "$W/keys" sender add steueramt \
    >"$W/ctl.log" 2>&1 && ! "$BIN/postfach-ctl" --db "$(conn postfach_admin_1)" audit export \
    >>"$W/ctl.log" 2>&1; then
    ok "ctl's login changes senders and may not read the audit"
else
    bad "ctl's login: $(cat "$W/ctl.log")"
fi
# audit-ship's command, one turn of its loop
"$BIN/postfach-ctl" --db "$(conn postfach_audit_1)" audit export --state "$W/last-id" \
    >"$W/ship.out" 2>"$W/ship.log"
rows=$("${PSQL[@]}" -d "$DB" -tAc "SELECT count(*) FROM admin_audit")
if [ "$rows" -gt 0 ] && [ "$(wc -l <"$W/ship.out")" -eq "$rows" ] && grep -q steueramt "$W/ship.out" &&
    ! "$BIN/postfach-ctl" --db "$(conn postfach_audit_1)" --keys "$W/keys" sender add x \
        >>"$W/ship.log" 2>&1; then
    ok "audit-ship's login ships the $rows rows and may change nothing"
else
    bad "audit-ship's login: $(wc -l <"$W/ship.out") of $rows rows; $(cat "$W/ship.log")"
fi
# the entry refuses an empty password file before the program runs
: >"$W/empty"
if POSTFACH_DB_PASSWORD_FILE="$W/empty" sh scripts/docker-entry.sh true >"$W/entry.log" 2>&1; then
    bad "docker-entry ran its command with an empty password file"
elif grep -q 'is empty' "$W/entry.log"; then
    ok "docker-entry stops on an empty password file: $(cat "$W/entry.log")"
else
    bad "docker-entry: $(cat "$W/entry.log")"
fi
pf_end
