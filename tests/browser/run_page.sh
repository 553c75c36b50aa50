#!/bin/bash
# The citizens' web page (GET /, lib/reader/page.c) in a real browser:
# Debian's Chromium, driven over W3C WebDriver (Debian's chromedriver) by
# tests/browser/page_test.js, against the real broker, reader and the run's
# PostgreSQL (PF_TEST_PGHOST, PF_TEST_PGPORT, set by scripts/test.sh).
#   tests/browser/run_page.sh BUILD_DIR        e.g. build/asan
# Prints "N passed, N failed" last; exits non-zero when anything failed.
set -u
BUILD=${1:?usage: run_page.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
BIN=$ROOT/$BUILD/bin

. tests/scriptlib.sh
pf_need node chromium chromedriver psql
for p in postfach-ctl postfach-broker postfach-reader postfach-send; do
    [ -x "$BIN/$p" ] || fail "no $BIN/$p (not built?)"
done
pf_scratch browser
export POSTFACH_DB="host=$PF_TEST_PGHOST port=$PF_TEST_PGPORT dbname=$DB user=postgres"
export POSTFACH_KEYS=$W/keys
{
    "$BIN/postfach-ctl" migrate --sql-dir "$ROOT/sql" &&
        "$BIN/postfach-ctl" keys init &&
        "$BIN/postfach-ctl" sender add bauamt &&
        "$BIN/postfach-ctl" citizen add citizen-a &&
        "$BIN/postfach-ctl" citizen add citizen-b
} >"$W/setup.log" 2>&1 || { cat "$W/setup.log"; fail "setup with postfach-ctl"; }

BROKER_PORT=$(pf_free_port)
READER_PORT=$(pf_free_port)
DRIVER_PORT=$(pf_free_port)
"$BIN/postfach-broker" --set "db=$POSTFACH_DB" --set "bind=tcp://127.0.0.1:$BROKER_PORT" \
    --set "curve_secret_file=$W/keys/broker.curve" \
    --set "receipt_key_file=$W/keys/receipt.jwk" >"$W/broker.log" 2>&1 &
PIDS+=($!)
"$BIN/postfach-reader" --set "db=$POSTFACH_DB" --set "listen_address=127.0.0.1" \
    --set "listen_port=$READER_PORT" --set "kek_file=$W/keys/kek" \
    --set "receipt_key_file=$W/keys/receipt.jwk" --set "idp_jwks_file=$W/keys/idp.jwks" \
    --set "idp_issuer=https://idp.postfach.local" --set "idp_audience=postfach-reader" \
    --set idp_development=on >"$W/reader.log" 2>&1 &
PIDS+=($!)
chromedriver --port="$DRIVER_PORT" >"$W/driver.log" 2>&1 &
PIDS+=($!)
pf_wait_for "$W/broker.log" 'event=ready' 20 || { cat "$W/broker.log"; fail "broker not ready"; }
pf_wait_for "$W/reader.log" 'event=ready' 20 || { cat "$W/reader.log"; fail "reader not ready"; }
pf_wait_for "$W/driver.log" 'started successfully' 20 || { cat "$W/driver.log"; fail "chromedriver"; }

SEND=("$BIN/postfach-send" --broker "tcp://127.0.0.1:$BROKER_PORT"
    --broker-key "$W/keys/broker.curve.pub" --key "$W/keys/senders/bauamt.curve")
# an attachment of every byte value, so that the download is checked byte
# for byte through fetch(), Blob and the browser's file writer
node -e 'process.stdout.write(Buffer.from([...Array(256).keys(), 0x25, 0x50, 0x44, 0x46]))' \
    >"$W/plan.pdf"
printf 'Sehr geehrte Frau A.,\n\nIhr Bauantrag ist genehmigt.\n\tMit freundlichen Grüßen\n' \
    >"$W/body-1.txt"
out1=$("${SEND[@]}" --to citizen-a --title "Baugenehmigung Gartenhaus" \
    --subject "Ihr Antrag vom 1. Dezember" --body-file "$W/body-1.txt" --reference "BA-2026-17" \
    --attach "$W/plan.pdf:application/pdf" --read-receipt 2>>"$W/send.log") ||
    fail "send 1: $(cat "$W/send.log")"
out2=$("${SEND[@]}" --to citizen-a --title "Gebührenbescheid <b>Gartenhaus</b>" \
    --subject "Gebühren" --body '<script>alert(1)</script> & "Zitat"' 2>>"$W/send.log") ||
    fail "send 2: $(cat "$W/send.log")"
out3=$("${SEND[@]}" --to citizen-b --title "Nur für Bürgerin B" --subject "B" --body "B" \
    2>>"$W/send.log") || fail "send 3: $(cat "$W/send.log")"
ID1=$(echo "$out1" | awk '$1 == "citizen-a" {print $2}')
ID2=$(echo "$out2" | awk '$1 == "citizen-a" {print $2}')
[ -n "$ID1" ] && [ -n "$ID2" ] && [ -n "$out3" ] || fail "no message ids: $out1 / $out2 / $out3"
TOKEN_A=$("$BIN/postfach-ctl" token citizen-a --level substantiell) || fail "token"

mkdir -p "$W/downloads"
READER_URL=http://127.0.0.1:$READER_PORT DRIVER_URL=http://127.0.0.1:$DRIVER_PORT \
    TOKEN_A=$TOKEN_A ID1=$ID1 ID2=$ID2 DOWNLOADS=$W/downloads ATTACHMENT=$W/plan.pdf \
    node tests/browser/page_test.js >"$W/page.log" 2>&1
rc=$?
cat "$W/page.log"
passed=$(awk '/^[0-9]+ passed, [0-9]+ failed$/ {p=$1} END {print p+0}' "$W/page.log")
failed=$(awk '/^[0-9]+ passed, [0-9]+ failed$/ {f=$3} END {print f+0}' "$W/page.log")
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1

# the retrieval in the browser reaches the agency as its signed read receipt
node -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>process.stdout.write(t))' \
    "http://127.0.0.1:$READER_PORT/.well-known/jwks.json" >"$W/receipt.jwks" 2>>"$W/receipts.log"
if "${SEND[@]}" --receipts-only --receipt-jwks "$W/receipt.jwks" --wait-seconds 10 \
    >>"$W/receipts.log" 2>&1 && grep -q "^receipt read $ID1 " "$W/receipts.log"; then
    ok "the retrieval in the browser sends the agency its read receipt"
else
    bad "no read receipt for $ID1 reached the agency: $(cat "$W/receipts.log")"
fi
# stop the services, so that their exit (and LeakSanitizer's report) is in the logs
pf_stop_all
if grep -aqE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$W"/*.log; then
    bad "sanitizer report in the services' logs"
    grep -a -A20 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$W"/*.log | head -40
fi
pf_end
