// The case runner of the Node test drivers (tests/interop/jose_interop.js,
// tests/browser/page_test.js): each case prints "ok: name" or
// "FAIL: name: why", and finish() prints the summary line
// "N passed, N failed" that scripts/test.sh sums up and exits 1 when
// anything failed.
'use strict';

let passed = 0;
let failed = 0;

async function tcase(name, fn) {
    try {
        await fn();
        console.log('ok: ' + name);
        passed++;
    } catch (e) {
        console.log('FAIL: ' + name + ': ' + (e && e.stack ? e.stack : e));
        failed++;
    }
}

function assert(cond, msg) {
    if (!cond) throw new Error(msg || 'assertion failed');
}

// Runs the driver's main (async); an exception outside the cases counts as
// one more failure, named after what, and the summary ends the process.
function run(what, main) {
    main()
        .catch((e) => {
            console.log('FAIL: ' + what + ': ' + (e && e.stack ? e.stack : e));
            failed++;
        })
        .finally(() => {
            console.log(passed + ' passed, ' + failed + ' failed');
            process.exit(failed ? 1 : 0);
        });
}

module.exports = { tcase, assert, run };
