// The citizens' web page in headless Chromium, driven over W3C WebDriver
// (chromedriver) with nothing but Node's own fetch: no npm package.
// Started by tests/browser/run_page.sh, which sets up the services, the
// notices and the token:
//   READER_URL DRIVER_URL TOKEN_A ID1 ID2 DOWNLOADS ATTACHMENT
// ID1 has an attachment (ATTACHMENT) and asks for a read receipt; ID2 has
// markup in its title and body.  citizen-b has a notice of its own that
// citizen-a must never see.
// Each case prints "ok: name" or "FAIL: name: why"; the last line is
// "N passed, N failed"; exit status 1 when any case failed.
'use strict';
const fs = require('fs');
const path = require('path');

const env = (k) => {
    const v = process.env[k];
    if (!v) throw new Error(k + ' is not set');
    return v;
};
const READER = env('READER_URL');
const DRIVER = env('DRIVER_URL');
const TOKEN = env('TOKEN_A');
const ID1 = env('ID1');
const ID2 = env('ID2');
const DOWNLOADS = env('DOWNLOADS');
const ATTACHMENT = fs.readFileSync(env('ATTACHMENT'));
// the web element identifier of the W3C WebDriver specification
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';
const ENTER = '\uE007';

const { tcase, assert, run } = require('../cases.js');

// --- WebDriver ----------------------------------------------------------

let session = null;
async function wd(method, p, body) {
    const url = DRIVER + '/session/' + session + p;
    const r = await fetch(url, {
        method,
        headers: { 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
    });
    const j = await r.json();
    if (!r.ok) throw new Error(method + ' ' + p + ': ' + JSON.stringify(j.value).slice(0, 400));
    return j.value;
}
const exec = (script, ...args) => wd('POST', '/execute/sync', { script, args });
async function find(css) {
    const v = await wd('POST', '/element', { using: 'css selector', value: css });
    return v[ELEMENT];
}
const click = (e) => wd('POST', '/element/' + e + '/click', {});
const type = (e, text) => wd('POST', '/element/' + e + '/value', { text });
// Polls a script until it returns a truthy value (the page works
// asynchronously: fetch, then the DOM).
async function until(what, script, ...args) {
    const end = Date.now() + 15000;
    let v;
    while (Date.now() < end) {
        v = await exec(script, ...args);
        if (v) return v;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error('timed out waiting for ' + what + ' (last: ' + JSON.stringify(v) + ')');
}
const status = () => exec("return document.getElementById('status').textContent;");
const rows = () =>
    exec(
        "return Array.from(document.querySelectorAll('#rows tr')).map(function(tr){" +
            "return {cls: tr.className, cells: Array.from(tr.children).map(function(td){" +
            'return td.textContent;}), button: !!tr.querySelector("button")};});'
    );

async function start() {
    const s = await fetch(DRIVER + '/session', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({
            capabilities: {
                alwaysMatch: {
                    browserName: 'chrome',
                    'goog:chromeOptions': {
                        binary: '/usr/bin/chromium',
                        // root has no user namespace sandbox on CI
                        args: ['--headless=new', '--no-sandbox', '--disable-gpu',
                            '--disable-dev-shm-usage', '--window-size=1200,900'],
                        prefs: {
                            'download.default_directory': DOWNLOADS,
                            'download.prompt_for_download': false,
                        },
                    },
                    'goog:loggingPrefs': { browser: 'ALL' },
                },
            },
        }),
    }).then((r) => r.json());
    if (!s.value || !s.value.sessionId)
        throw new Error('no WebDriver session: ' + JSON.stringify(s).slice(0, 400));
    session = s.value.sessionId;
}

async function login(token) {
    await wd('POST', '/url', { url: READER + '/' });
    const t = await find('#token');
    await type(t, token);
    await click(await find('#login button[type=submit]'));
}

// --- cases --------------------------------------------------------------

async function main() {
    await start();
    try {
        await tcase('a forged token gets the German message, and no list', async () => {
            await login(TOKEN.slice(0, -4) + 'AAAA');
            const s = await until('an error', "var s=document.getElementById('status');" +
                "return s.className==='err'&&s.textContent;");
            assert(/Anmeldung ung\u00fcltig/.test(s), 'status: ' + s);
            assert(await exec("return document.getElementById('inbox').hidden;"), 'inbox shown');
            assert((await rows()).length === 0, 'rows after a refused token');
        });

        await tcase("the list shows citizen-a's two notices, newest first, none of B's", async () => {
            await login(TOKEN);
            await until('two rows', "return document.querySelectorAll('#rows tr').length===2;");
            const r = await rows();
            assert(r[0].cells[2] === 'Geb\u00fchrenbescheid <b>Gartenhaus</b>',
                'first title as text, markup not interpreted: ' + JSON.stringify(r[0].cells));
            assert(r[1].cells[2] === 'Baugenehmigung Gartenhaus', JSON.stringify(r[1].cells));
            assert(r[1].cells[3] === 'BA-2026-17', 'reference: ' + r[1].cells[3]);
            assert(r.every((x) => /unread/.test(x.cls) && x.cells[4] === 'ungelesen'),
                'both unread: ' + JSON.stringify(r));
            assert(r.every((x) => x.cells[1] === 'bauamt'), 'sender: ' + JSON.stringify(r));
            const all = await exec('return document.body.textContent;');
            assert(!/B\u00fcrgerin B/.test(all), "citizen-b's notice on citizen-a's page");
            assert((await exec("return document.getElementById('token').value;")) === '',
                'the token stays in the text field');
        });

        await tcase('markup in a notice stays text (no element made from it)', async () => {
            const n = await exec("return document.querySelectorAll('#rows b, #notice script, " +
                "#notice b').length;");
            assert(n === 0, n + ' elements made from notice text');
        });

        await tcase('a notice opens from the keyboard: Enter on its title button', async () => {
            const b = await find('#rows tr:nth-child(2) td button');
            assert((await exec('return arguments[0].tagName;', { [ELEMENT]: b })) === 'BUTTON');
            await type(b, ENTER);
            const h = await until('the notice', "var v=document.getElementById('notice');" +
                "return !v.hidden&&v.querySelector('h2')&&v.querySelector('h2').textContent;");
            assert(h === 'Ihr Antrag vom 1. Dezember', 'heading: ' + h);
            const body = await exec("return document.querySelector('#notice pre').textContent;");
            assert(body === 'Sehr geehrte Frau A.,\n\nIhr Bauantrag ist genehmigt.\n' +
                '\tMit freundlichen Gr\u00fc\u00dfen\n', 'body: ' + JSON.stringify(body));
            const focus = await exec('return document.activeElement.tagName+"|"+' +
                'document.activeElement.textContent;');
            assert(focus === 'H2|Ihr Antrag vom 1. Dezember', 'focus after opening: ' + focus);
            const meta = await exec("return document.querySelector('#notice p.muted').textContent;");
            assert(/Von bauamt/.test(meta) && /BA-2026-17/.test(meta) && !/abgerufen \u2014/.test(meta),
                'meta line names sender, reference and a retrieval time: ' + meta);
        });

        await tcase('the attachment downloads byte for byte', async () => {
            const b = await find('#notice ul li button');
            const label = await exec('return arguments[0].textContent;', { [ELEMENT]: b });
            assert(/^plan\.pdf \(260 B\)$/.test(label), 'label: ' + label);
            await click(b);
            const file = path.join(DOWNLOADS, 'plan.pdf');
            const end = Date.now() + 15000;
            while (!fs.existsSync(file) && Date.now() < end)
                await new Promise((r) => setTimeout(r, 100));
            assert(fs.existsSync(file), 'no download in ' + DOWNLOADS + ': ' +
                fs.readdirSync(DOWNLOADS).join(','));
            // the browser renames the file once complete
            await new Promise((r) => setTimeout(r, 200));
            assert(Buffer.compare(fs.readFileSync(file), ATTACHMENT) === 0, 'bytes differ');
        });

        await tcase('back to the list: the notice is read, focus is on its title', async () => {
            await click(await find('#notice > button:last-of-type'));
            await until('the list with one read', "var r=document.querySelectorAll('#rows tr');" +
                "return r.length===2&&!/unread/.test(r[1].className);");
            const r = await rows();
            assert(/unread/.test(r[0].cls) && r[0].cells[4] === 'ungelesen', 'the other stays unread');
            assert(r[1].cells[4] !== 'ungelesen', 'retrieval time shown: ' + r[1].cells[4]);
            const focus = await exec('return document.activeElement.textContent;');
            assert(focus === 'Baugenehmigung Gartenhaus', 'focus: ' + focus);
        });

        await tcase('the API agrees: the opened notice has its retrieval time, the other none',
            async () => {
                const j = await fetch(READER + '/v1/messages', {
                    headers: { Authorization: 'Bearer ' + TOKEN },
                }).then((r) => r.json());
                const byId = Object.fromEntries(j.messages.map((m) => [m.id, m]));
                assert(byId[ID1] && byId[ID1].read_at, 'ID1 read_at: ' + JSON.stringify(byId[ID1]));
                assert(byId[ID2] && !byId[ID2].read_at, 'ID2 read_at: ' + JSON.stringify(byId[ID2]));
            });

        await tcase('the page ran under its Content-Security-Policy without a violation', async () => {
            const log = await wd('POST', '/se/log', { type: 'browser' });
            const bad = log.filter((e) => /Content Security Policy|Refused to/i.test(e.message));
            assert(bad.length === 0, JSON.stringify(bad).slice(0, 600));
        });

        await tcase('logging out empties the page', async () => {
            await click(await find('#logout'));
            await until('logged out', "return document.getElementById('status').textContent===" +
                "'Abgemeldet.';");
            assert((await rows()).length === 0, 'rows left after logout');
            assert(await exec("return document.getElementById('inbox').hidden&&" +
                "document.getElementById('notice').hidden;"), 'sections still shown');
        });
    } finally {
        await wd('DELETE', '').catch(() => {});
    }
}

run('WebDriver', main);
