#!/bin/sh
# postfach-docker-init: the one-shot initialisation of docker-compose.yml.
# Runs as root under postfach-docker-entry (PGPASSWORD is the database
# owner's, POSTFACH_DB names the database):
#   1. applies the migrations, retrying while the database still starts;
#   2. makes the service keys in the administration volume ($KEYS), without
#      a development identity key (one left from an earlier version is
#      removed: whoever reads it can mint a token for every mailbox);
#   3. gives the broker, the reader, the administration (the compose
#      service ctl) and the audit's shipper (audit-ship) database logins of
#      their own in the groups of sql/0008_roles.sql (the administration's
#      privileges: sql/0019; the auditor's: sql/0021),
#      passwords from the compose secrets: only this init logs in as the
#      database owner;
#   4. copies to the broker's and the reader's volumes only the key files
#      each needs, mode 0600, owned by the user the daemons run as; the
#      broker never gets the KEK.
# Idempotent: run it again (docker compose run --rm init) to hand a changed
# key file over, e.g. after `kek rotate` (README, "docker compose").
set -eu
SQL=${POSTFACH_SQL_DIR:-/usr/share/postfach/sql}
KEYS=${POSTFACH_KEYS:-/var/lib/postfach/keys}
BROKER_KEYS=${POSTFACH_BROKER_KEYS:-/var/lib/postfach/broker-keys}
READER_KEYS=${POSTFACH_READER_KEYS:-/var/lib/postfach/reader-keys}
SECRETS=${POSTFACH_SECRETS:-/run/secrets}
BROKER_LOGIN=${POSTFACH_BROKER_LOGIN:-postfach_broker_1}
READER_LOGIN=${POSTFACH_READER_LOGIN:-postfach_reader_1}
ADMIN_LOGIN=${POSTFACH_ADMIN_LOGIN:-postfach_admin_1}
AUDIT_LOGIN=${POSTFACH_AUDIT_LOGIN:-postfach_audit_1}
OWNER=${POSTFACH_USER:-postfach}
TRIES=${POSTFACH_INIT_TRIES:-30}

say() { echo "postfach-docker-init: $*" >&2; }

# The database may still be in its first start (the image's initialisation
# runs a server on the Unix socket only) or restarting: try for a minute.
n=1
until postfach-ctl migrate --sql-dir "$SQL"; do
    if [ "$n" -ge "$TRIES" ]; then
        say "migrations failed $n times; giving up"
        exit 1
    fi
    say "migrations failed (attempt $n of $TRIES; database not ready?); again in 2 s"
    n=$((n + 1))
    sleep 2
done

umask 077
postfach-ctl --keys "$KEYS" keys init --no-dev-idp
postfach-ctl role login "$BROKER_LOGIN" broker --password-file "$SECRETS/broker_db_password"
postfach-ctl role login "$READER_LOGIN" reader --password-file "$SECRETS/reader_db_password"
postfach-ctl role login "$ADMIN_LOGIN" admin --password-file "$SECRETS/admin_db_password"
postfach-ctl role login "$AUDIT_LOGIN" auditor --password-file "$SECRETS/audit_db_password"

# hand_over DIR FILE...: each FILE of $KEYS into DIR, replaced by one rename
# (a daemon reading it sees the old file or the new one, never a part)
hand_over() {
    dir=$1
    shift
    mkdir -p "$dir"
    for f in "$@"; do
        cp "$KEYS/$f" "$dir/.$f.new"
        chmod 0600 "$dir/.$f.new"
        chown "$OWNER:" "$dir/.$f.new"
        mv -f "$dir/.$f.new" "$dir/$f"
    done
    chown "$OWNER:" "$dir"
    chmod 0700 "$dir"
    say "$dir: $*"
}
hand_over "$BROKER_KEYS" broker.curve receipt.jwk
hand_over "$READER_KEYS" kek receipt.jwk
# postfach-ctl (docker compose run --rm ctl) runs as $OWNER and writes here
chown -R "$OWNER:" "$KEYS"
chmod 0700 "$KEYS"
