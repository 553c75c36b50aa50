#!/bin/bash
# The systemd deployment (`make install`, scripts/systemd/): what is
# installed, whether systemd accepts the units, how exposed they leave the
# daemons, and whether their system call filter admits every system call
# the installed daemons make in a full run.  No systemd is needed to run
# this (CI runs in a container): the units are checked with
# `systemd-analyze verify` and `systemd-analyze security --offline`, and
# the daemons run under strace with the settings files that were installed,
# against the run's PostgreSQL (PF_TEST_PGHOST, PF_TEST_PGPORT).
#   tests/deploy/run_systemd.sh BUILD_DIR      e.g. build/asan
# Prints "ok: ..." or "FAIL: ..." per check and "N passed, N failed" last.
set -u
BUILD=${1:?usage: run_systemd.sh BUILD_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT" || exit 1
MODE=$(basename "$BUILD")
# exposure level of `systemd-analyze security` (0 to 10) that a unit may
# not exceed, in tenths: 1.5, where systemd calls 1.0 to 1.9 "OK"
THRESHOLD=15

. tests/scriptlib.sh
pf_need systemd-analyze strace node psql
pf_scratch deploy
DEST=$W/root

# --- what `make install` puts where ---------------------------------------

make -s MODE="$MODE" install DESTDIR="$DEST" PREFIX=/usr/local >"$W/install.log" 2>&1 ||
    { cat "$W/install.log"; fail "make install"; }
BIN=$DEST/usr/local/bin
UNITS=$DEST/usr/local/lib/systemd/system
missing=""
for f in usr/local/bin/postfach-broker usr/local/bin/postfach-reader usr/local/bin/postfach-ctl \
    usr/local/bin/postfach-send usr/local/lib/systemd/system/postfach-broker.service \
    usr/local/lib/systemd/system/postfach-reader.service \
    usr/local/lib/systemd/system/postfach-audit-ship.service \
    usr/local/lib/systemd/system/postfach-audit-ship.timer usr/local/lib/sysusers.d/postfach.conf \
    usr/local/lib/tmpfiles.d/postfach.conf etc/postfach/broker.conf etc/postfach/reader.conf \
    usr/local/share/doc/postfach/README.md; do
    [ -e "$DEST/$f" ] || missing="$missing $f"
done
nsql=$(ls sql/*.sql | wc -l)
ninst=$(ls "$DEST"/usr/local/share/postfach/sql/*.sql 2>/dev/null | wc -l)
if [ -z "$missing" ] && [ "$nsql" -eq "$ninst" ]; then
    ok "make install: programs, $ninst migrations, units, sysusers, tmpfiles, settings"
else
    bad "make install: missing:$missing; migrations $ninst of $nsql"
fi
if grep -l '@[A-Z]*@' "$UNITS"/*.service >/dev/null; then
    bad "a placeholder is left in the installed units: $(grep -h '@[A-Z]*@' "$UNITS"/*.service)"
else
    ok "the installed units name the installed programs ($(grep -h '^ExecStart' \
        "$UNITS"/postfach-broker.service | cut -c1-60)...)"
fi
# a second install keeps the operator's settings
echo "# changed by the operator" >>"$DEST/etc/postfach/broker.conf"
make -s MODE="$MODE" install DESTDIR="$DEST" PREFIX=/usr/local >>"$W/install.log" 2>&1
if grep -q 'changed by the operator' "$DEST/etc/postfach/broker.conf"; then
    ok "a second make install keeps /etc/postfach/broker.conf"
else
    bad "make install overwrote the operator's /etc/postfach/broker.conf"
fi

# --- systemd's own checks -------------------------------------------------

# verify wants the programs at the path the unit names: a copy of each unit
# that points into DESTDIR
mkdir -p "$W/verify"
sed "s|/usr/local/bin/|$BIN/|" "$UNITS/postfach-audit-ship.timer" \
    >"$W/verify/postfach-audit-ship.timer"
for u in postfach-broker postfach-reader postfach-audit-ship; do
    sed "s|/usr/local/bin/|$BIN/|" "$UNITS/$u.service" >"$W/verify/$u.service"
    units=("$W/verify/$u.service")
    [ -e "$W/verify/$u.timer" ] && units+=("$W/verify/$u.timer")
    if systemd-analyze verify "${units[@]}" >"$W/verify-$u.log" 2>&1 &&
        ! grep -q . "$W/verify-$u.log"; then
        ok "systemd-analyze verify ${units[*]##*/}: no complaint"
    else
        bad "systemd-analyze verify $u.service: $(cat "$W/verify-$u.log")"
    fi
    systemd-analyze security --offline=true --threshold=$THRESHOLD "$W/verify/$u.service" \
        >"$W/security-$u.log" 2>&1
    rc=$?
    level=$(grep -o 'Overall exposure level.*' "$W/security-$u.log")
    if [ "$rc" -eq 0 ] && [ -n "$level" ]; then
        ok "$u.service: exposure level ${level##*: }"
    else
        bad "$u.service above exposure $THRESHOLD/10: $level"
        grep '✗' "$W/security-$u.log" | head -20
    fi
done

# the settings files parse; the reader's names no identity provider until
# the operator sets one, so the reader must refuse to start and say so
# (receipt_key_file comes from the unit's command line)
if "$BIN/postfach-broker" --config "$DEST/etc/postfach/broker.conf" --print-config \
    >"$W/broker-config.log" 2>&1; then
    ok "postfach-broker reads the installed broker.conf"
else
    bad "postfach-broker --config broker.conf: $(cat "$W/broker-config.log")"
fi
"$BIN/postfach-reader" --config "$DEST/etc/postfach/reader.conf" \
    --set receipt_key_file=/nonexistent >"$W/reader-config.log" 2>&1
rc=$?
# the refusal is a log line like the broker's: event=bad_config, the
# setting's name quoted as \x22 (pf_log_escape)
if [ "$rc" -eq 2 ] && grep -q 'event=bad_config error="setting \\x22idp_' "$W/reader-config.log" &&
    "$BIN/postfach-reader" --config "$DEST/etc/postfach/reader.conf" \
        --set idp_issuer=https://id.example.de --set idp_audience=postfach \
        --set idp_jwks_file=/dev/null --print-config >>"$W/reader-config.log" 2>&1; then
    ok "the installed reader.conf parses, and without an identity provider the reader refuses" \
        "to start: $(head -n 1 "$W/reader-config.log")"
else
    bad "reader.conf (exit $rc): $(cat "$W/reader-config.log")"
fi

# --- the system call filter against a full run ----------------------------

# the set a unit's SystemCallFilter= lines allow, applied in order as
# systemd does for an allow-list (the first line is not inverted): a plain
# line adds its calls, a "~" line takes them away; each group expanded
# through its nested groups
allowed_calls() {
    local unit=$1
    systemd-analyze syscall-filter >"$W/groups.txt" 2>/dev/null
    node -e '
const fs = require("fs");
const groups = {};
let cur = null;
for (const line of fs.readFileSync(process.argv[1], "utf8").split("\n")) {
    if (/^@/.test(line)) { cur = line.trim(); groups[cur] = []; continue; }
    const t = line.trim();
    if (cur && t && !t.startsWith("#")) groups[cur].push(t);
}
function expand(name, out) {
    if (!name.startsWith("@")) { out.add(name); return out; }
    if (!groups[name]) throw new Error("unknown group " + name);
    for (const m of groups[name]) expand(m, out);
    return out;
}
const allow = new Set();
let first = true;
for (const l of fs.readFileSync(process.argv[2], "utf8").split("\n")) {
    const m = /^SystemCallFilter=(~?)(.*)$/.exec(l);
    if (!m) continue;
    if (first && m[1]) throw new Error("the first SystemCallFilter= is a deny-list");
    first = false;
    const set = new Set();
    for (const n of m[2].split(/\s+/).filter(Boolean)) expand(n, set);
    for (const n of set) m[1] ? allow.delete(n) : allow.add(n);
}
for (const n of [...allow].sort()) console.log(n);
' "$W/groups.txt" "$unit"
}

# the calls in the summary at the end of an `strace -C` log
traced_calls() {
    awk '/^% time/ {n = 0; s = 1; next} s && /^------/ {n++; next} s && n == 1 && NF {print $NF}' \
        "$1" | sort -u
}

# the paths the traced process named in file system calls
traced_paths() {
    grep -aoE '(open|openat|stat|lstat|newfstatat|statx|access|faccessat2?|readlink|readlinkat)\((AT_FDCWD, )?"[^"]*"' \
        "$1" | sed -E 's/^[a-z0-9]+\((AT_FDCWD, )?"//; s/"$//' | sort -u
}

export POSTFACH_DB="host=$PF_TEST_PGHOST port=$PF_TEST_PGPORT dbname=$DB user=postgres"
export POSTFACH_KEYS=$W/keys
{
    "$BIN/postfach-ctl" migrate --sql-dir "$DEST/usr/local/share/postfach/sql" &&
        "$BIN/postfach-ctl" keys init &&
        "$BIN/postfach-ctl" sender add finanzamt &&
        "$BIN/postfach-ctl" citizen add citizen-a
} >"$W/setup.log" 2>&1 || { cat "$W/setup.log"; fail "setup with the installed postfach-ctl"; }

BROKER_PORT=$(pf_free_port)
READER_PORT=$(pf_free_port)
# the installed settings files, with what the test's machine differs in,
# and the unit's environment: libpq's password file is the credential
: >"$W/pgpass"
chmod 0600 "$W/pgpass"
export PGPASSFILE=$W/pgpass
strace -f -qq -C -o "$W/broker.strace" "$BIN/postfach-broker" \
    --config "$DEST/etc/postfach/broker.conf" --set "db=$POSTFACH_DB" \
    --set "bind=tcp://127.0.0.1:$BROKER_PORT" --set "curve_secret_file=$W/keys/broker.curve" \
    --set "receipt_key_file=$W/keys/receipt.jwk" >"$W/broker.log" 2>&1 &
PIDS+=($!)
strace -f -qq -C -o "$W/reader.strace" "$BIN/postfach-reader" \
    --config "$DEST/etc/postfach/reader.conf" --set "db=$POSTFACH_DB" \
    --set "listen_port=$READER_PORT" --set "kek_file=$W/keys/kek" \
    --set "receipt_key_file=$W/keys/receipt.jwk" --set "idp_jwks_file=$W/keys/idp.jwks" \
    --set "idp_issuer=https://idp.postfach.local" --set "idp_audience=postfach-reader" \
    --set idp_development=on >"$W/reader.log" 2>&1 &
PIDS+=($!)
pf_wait_for "$W/broker.log" 'event=ready' 30 || { cat "$W/broker.log"; fail "broker not ready"; }
pf_wait_for "$W/reader.log" 'event=ready' 30 || { cat "$W/reader.log"; fail "reader not ready"; }

SEND=("$BIN/postfach-send" --broker "tcp://127.0.0.1:$BROKER_PORT"
    --broker-key "$W/keys/broker.curve.pub" --key "$W/keys/senders/finanzamt.curve")
head -c 100000 /dev/urandom >"$W/anlage.pdf"
out=$("${SEND[@]}" --to citizen-a --title "Einkommensteuerbescheid 2025" --subject "Bescheid" \
    --body "Anbei der Bescheid." --attach "$W/anlage.pdf:application/pdf" --read-receipt \
    2>"$W/send.log") || fail "send: $(cat "$W/send.log")"
ID=$(echo "$out" | awk '$1 == "citizen-a" {print $2}')
TOKEN=$("$BIN/postfach-ctl" token citizen-a) || fail "token"
node -e '
const [base, token, id] = process.argv.slice(1);
const h = { headers: { Authorization: "Bearer " + token } };
(async () => {
    for (const p of ["/", "/healthz", "/.well-known/jwks.json", "/v1/messages",
                     "/v1/messages/" + id, "/v1/messages/" + id + "/attachments/0",
                     "/v1/messages/" + id + "/jwe"]) {
        const r = await fetch(base + p, h);
        await r.arrayBuffer();
        if (r.status !== 200) throw new Error(p + ": " + r.status);
    }
    const bad = await fetch(base + "/v1/messages", { headers: { Authorization: "Bearer x.y.z" } });
    if (bad.status !== 401) throw new Error("forged token: " + bad.status);
})().catch((e) => { console.error(e.message); process.exit(1); });
' "http://127.0.0.1:$READER_PORT" "$TOKEN" "$ID" >"$W/read.log" 2>&1 ||
    bad "reading through the installed reader: $(cat "$W/read.log")"
node -e 'fetch(process.argv[1]).then(r=>r.text()).then(t=>process.stdout.write(t))' \
    "http://127.0.0.1:$READER_PORT/.well-known/jwks.json" >"$W/receipt.jwks"
"${SEND[@]}" --receipts-only --receipt-jwks "$W/receipt.jwks" --wait-seconds 10 \
    >"$W/receipts.log" 2>&1
if grep -q "^receipt delivered $ID " "$W/receipts.log" && grep -q "^receipt read $ID " \
    "$W/receipts.log"; then
    ok "a full run through the installed programs: notice, retrieval, delivered and read receipts"
else
    bad "receipts of the full run: $(cat "$W/receipts.log")"
fi
# the audit's shipper as its timer runs it (the setup above made rows),
# twice: the second run finds nothing new
for run in 1 2; do
    strace -f -qq -C -o "$W/audit-$run.strace" "$BIN/postfach-ctl" audit export \
        --state "$W/last-id" >"$W/audit-$run.out" 2>"$W/audit-$run.log"
done
rows=$("${PSQL[@]}" -d "$DB" -tAc "SELECT count(*) FROM admin_audit")
if [ "$(wc -l <"$W/audit-1.out")" -eq "$rows" ] && [ "$rows" -gt 0 ] &&
    [ ! -s "$W/audit-2.out" ] && [ "$(cat "$W/last-id")" = "$("${PSQL[@]}" -d "$DB" -tAc \
        "SELECT max(id) FROM admin_audit")" ]; then
    ok "the audit's shipper ships its $rows rows once and records the last id"
else
    bad "audit shipping: $(wc -l <"$W/audit-1.out") of $rows rows, then $(wc -l \
        <"$W/audit-2.out"); last-id $(cat "$W/last-id" 2>&1); $(cat "$W/audit-1.log")"
fi
# the two runs as one trace (traced_calls reads every summary in it)
cat "$W/audit-1.strace" "$W/audit-2.strace" >"$W/audit.strace"

# SIGTERM to the daemons, as systemd stops them (strace passes on no
# signal of its own); strace writes its summary when they have exited
pf_stop_all

for u in broker reader audit; do
    unit=$UNITS/postfach-$u.service
    [ "$u" = audit ] && unit=$UNITS/postfach-audit-ship.service
    allowed_calls "$unit" >"$W/allowed-$u.txt"
    traced_calls "$W/$u.strace" >"$W/used-$u.txt"
    nused=$(wc -l <"$W/used-$u.txt")
    outside=$(comm -23 "$W/used-$u.txt" "$W/allowed-$u.txt" | tr '\n' ' ')
    if [ "$nused" -lt 20 ] || [ "$(wc -l <"$W/allowed-$u.txt")" -lt 100 ]; then
        bad "postfach-$u: no usable trace or filter ($nused calls used)"
    elif [ -z "$outside" ]; then
        ok "${unit##*/}: its system call filter admits all $nused calls of the run"
    else
        bad "${unit##*/}: the run makes calls its filter refuses: $outside"
    fi
done
# what the units hide: ProtectHome= (/home, /root, /run/user), ProcSubset=pid
# (everything in /proc but the processes), PrivateDevices= (every device
# but the pseudo ones)
for u in broker reader audit; do
    traced_paths "$W/$u.strace" >"$W/paths-$u.txt"
    hidden=$(grep -E '^/(home|root|run/user)(/|$)|^/proc/(sys|cpuinfo|meminfo|stat$|loadavg|kcore|kmsg|modules|mounts|net|partitions|swaps|vmstat|zoneinfo|interrupts|filesystems|crypto|keys|locks)|^/dev/' \
        "$W/paths-$u.txt" | grep -vE '^/dev/(null|zero|full|random|urandom|tty|pts/.*|shm(/.*)?)$' |
        tr '\n' ' ')
    if [ "$(wc -l <"$W/paths-$u.txt")" -lt 3 ]; then
        bad "postfach-$u: no file system calls traced"
    elif [ -z "$hidden" ]; then
        ok "postfach-$u opens nothing its unit hides ($(wc -l <"$W/paths-$u.txt") paths," \
            "/proc: $(grep -c '^/proc' "$W/paths-$u.txt"), /dev: $(grep -c '^/dev' "$W/paths-$u.txt"))"
    else
        bad "postfach-$u opens what its unit hides: $hidden"
    fi
done
if grep -aqE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$W"/*.log; then
    bad "sanitizer report in the daemons' logs"
    grep -a -A20 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$W"/*.log | head -40
fi
pf_end
