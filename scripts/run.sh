#!/bin/bash
# `make run`: a local Postfach under var/ — PostgreSQL, broker and reader in
# the foreground, with demo data on first start.  Ctrl-C stops everything.
# A second run reuses the database, the keys and the notices.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=$ROOT/build/release/bin
VAR=$ROOT/var
KEYS=$VAR/keys
BROKER_PORT=${POSTFACH_BROKER_PORT:-7400}
READER_PORT=${POSTFACH_READER_PORT:-8080}

scripts/pg.sh start "$VAR/pg" "${POSTFACH_PG_PORT:-}" >/dev/null
PGHOST=$VAR/pg/sock
PGPORT=$(cat "$VAR/pg/port")
export POSTFACH_DB="host=$PGHOST port=$PGPORT dbname=postfach user=postgres"
export POSTFACH_KEYS=$KEYS

pids=()
cleanup() {
    trap - INT TERM EXIT
    echo
    echo "stopping..."
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    scripts/pg.sh stop "$VAR/pg"
    echo "stopped; data kept in var/ (remove var/ to start afresh)"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

if ! psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='postfach'" | grep -q 1; then
    psql -h "$PGHOST" -p "$PGPORT" -U postgres -d postgres -qc "CREATE DATABASE postfach" >/dev/null
fi
"$BIN/postfach-ctl" migrate --sql-dir "$ROOT/sql"
"$BIN/postfach-ctl" keys init >/dev/null

first_run=no
if [ ! -f "$KEYS/senders/demo-agency.curve" ]; then
    first_run=yes
    "$BIN/postfach-ctl" sender add demo-agency
    "$BIN/postfach-ctl" citizen add citizen-a
    "$BIN/postfach-ctl" citizen add citizen-b --key-type rsa3072
fi

"$BIN/postfach-broker" \
    --set "db=$POSTFACH_DB" --set "bind=tcp://127.0.0.1:$BROKER_PORT" \
    --set "curve_secret_file=$KEYS/broker.curve" --set "receipt_key_file=$KEYS/receipt.jwk" &
pids+=($!)
"$BIN/postfach-reader" \
    --set "db=$POSTFACH_DB" --set "listen_address=127.0.0.1" --set "listen_port=$READER_PORT" \
    --set "kek_file=$KEYS/kek" --set "receipt_key_file=$KEYS/receipt.jwk" \
    --set "idp_jwks_file=$KEYS/idp.jwks" --set "idp_issuer=https://idp.postfach.local" \
    --set "idp_audience=postfach-reader" --set idp_development=on &
pids+=($!)
sleep 1

SEND="$BIN/postfach-send --broker tcp://127.0.0.1:$BROKER_PORT --broker-key $KEYS/broker.curve.pub --key $KEYS/senders/demo-agency.curve"
if [ "$first_run" = yes ]; then
    printf 'Sehr geehrte Frau A.,\n\nanbei Ihr Bescheid.\n' >"$VAR/demo-body.txt"
    printf '%%PDF-1.4 demo attachment\n' >"$VAR/demo-bescheid.pdf"
    $SEND --to citizen-a --title "Hundesteuerbescheid 2026" --subject "Ihr Hundesteuerbescheid" \
        --body-file "$VAR/demo-body.txt" --reference "HST-2026-0042" \
        --attach "$VAR/demo-bescheid.pdf:application/pdf" --read-receipt --request-id demo-1 \
        || echo "demo notice could not be sent (see the broker's log above)"
fi

cat <<INFO

Postfach is running (Ctrl-C stops it).
  broker:  tcp://127.0.0.1:$BROKER_PORT   (CURVE key: $KEYS/broker.curve.pub)
  reader:  http://127.0.0.1:$READER_PORT/ (web page) and /v1/messages (JSON)

Send a notice (as the demo sender), and wait for its receipts:
  $SEND \\
      --to citizen-a --title "Baugenehmigung" --subject "Ihr Antrag" --body "Genehmigt." \\
      --attach README.md:text/markdown --read-receipt --wait-receipts

Read it (as citizen-a):
  TOKEN=\$(POSTFACH_DB="$POSTFACH_DB" $BIN/postfach-ctl --keys $KEYS token citizen-a)
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$READER_PORT/v1/messages
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$READER_PORT/v1/messages/<id>
  or open http://127.0.0.1:$READER_PORT/ and paste the token.

INFO
wait -n "${pids[@]}" || true
echo "a service exited; stopping the rest" >&2
