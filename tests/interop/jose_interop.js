// Interop of lib/crypto, lib/auth and lib/receipt with an independent JOSE
// implementation: Debian's node-jose (panva's jose v4), in both directions.
//
//   NODE_PATH=/usr/share/nodejs node jose_interop.js PF_JOSE_TOOL WORKDIR
//
// Each case prints "ok: name" or "FAIL: name: why"; the last line is
// "N passed, N failed" (what scripts/test.sh sums up); exit status 1 when
// any case failed.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');
const jose = require('jose');

const TOOL = process.argv[2];
const DIR = process.argv[3];
if (!TOOL || !DIR) {
    console.error('usage: jose_interop.js PF_JOSE_TOOL WORKDIR');
    process.exit(2);
}

const { tcase, assert, run } = require('../cases.js');

let nfile = 0;
function file(content) {
    const p = path.join(DIR, 'f' + nfile++);
    fs.writeFileSync(p, content);
    return p;
}

// Runs the tool; returns stdout (Buffer).  With refuse, the tool must exit
// 1 (a refusal, not a crash or a sanitizer report) and stderr is returned.
function tool(args, refuse) {
    const r = spawnSync(TOOL, args, { encoding: 'buffer', maxBuffer: 256 * 1024 * 1024 });
    const err = r.stderr.toString();
    if (refuse) {
        assert(r.status === 1, `pf-jose-tool ${args[0]} should refuse with status 1, got ${r.status}: ${err}`);
        return err.trim();
    }
    assert(r.status === 0, `pf-jose-tool ${args[0]} failed with status ${r.status}: ${err}`);
    return r.stdout;
}
const text = (b) => b.toString().trim();

run('interop driver', async () => {
    const enc = new TextEncoder();
    const NOW = Math.floor(Date.now() / 1000);

    // keys made by us
    const ourEc = path.join(DIR, 'ec.jwk');
    const ourRsa = path.join(DIR, 'rsa.jwk');
    const ourRsa4096 = path.join(DIR, 'rsa4096.jwk');
    for (const [kind, p] of [['p256', ourEc], ['rsa3072', ourRsa], ['rsa4096', ourRsa4096]]) {
        try { fs.unlinkSync(p); } catch (e) { /* fresh */ }
        tool(['genkey', kind, p]);
    }
    const ourEcJwk = JSON.parse(fs.readFileSync(ourEc));
    const ourRsaJwk = JSON.parse(fs.readFileSync(ourRsa));
    const ourRsa4096Jwk = JSON.parse(fs.readFileSync(ourRsa4096));

    // keys made by node
    const nodeEc = await jose.generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
    const nodeRsa = await jose.generateKeyPair('RSA-OAEP-256', { modulusLength: 3072 });
    const nodeEcPriv = await jose.exportJWK(nodeEc.privateKey);
    const nodeRsaPriv = await jose.exportJWK(nodeRsa.privateKey);
    const nodeEcFile = file(JSON.stringify(nodeEcPriv));
    const nodeRsaFile = file(JSON.stringify(nodeRsaPriv));

    const message = 'Sehr geehrte Frau Müller, anbei Ihr Bescheid. \u{1F4EC}\n';
    const big = Buffer.alloc(1024 * 1024 + 7, 'x'); // over 1 MiB

    await tcase('RFC 7638 thumbprints agree (our keys)', async () => {
        for (const [p, j] of [[ourEc, ourEcJwk], [ourRsa, ourRsaJwk]]) {
            assert(text(tool(['kid', p])) === await jose.calculateJwkThumbprint(j));
            assert(j.kid === await jose.calculateJwkThumbprint(j), 'exported kid is the thumbprint');
        }
    });
    await tcase('RFC 7638 thumbprints agree (node keys import into ours)', async () => {
        assert(text(tool(['kid', nodeEcFile])) === await jose.calculateJwkThumbprint(nodeEcPriv));
        assert(text(tool(['kid', nodeRsaFile])) === await jose.calculateJwkThumbprint(nodeRsaPriv));
    });

    // --- our JWE -> node ---------------------------------------------------
    for (const [name, keyFile, jwk, alg] of [
        ['ECDH-ES+A256KW P-256', ourEc, ourEcJwk, 'ECDH-ES+A256KW'],
        ['RSA-OAEP-256 RSA-3072', ourRsa, ourRsaJwk, 'RSA-OAEP-256'],
        ['RSA-OAEP-256 RSA-4096', ourRsa4096, ourRsa4096Jwk, 'RSA-OAEP-256'],
    ]) {
        await tcase(`our ${name} JWE decrypts in node-jose`, async () => {
            const jwe = text(tool(['seal', keyFile, 'text/plain', file(message)]));
            const key = await jose.importJWK(jwk, alg);
            const r = await jose.compactDecrypt(jwe, key, {
                keyManagementAlgorithms: [alg], contentEncryptionAlgorithms: ['A256GCM'] });
            assert(Buffer.from(r.plaintext).toString() === message, 'plaintext differs');
            const h = r.protectedHeader;
            assert(h.alg === alg && h.enc === 'A256GCM' && h.cty === 'text/plain', JSON.stringify(h));
            assert(h.kid === jwk.kid, 'kid');
            if (alg.startsWith('ECDH')) {
                assert(Object.keys(h.epk).sort().join() === 'crv,kty,x,y', 'epk members');
            } else {
                assert(h.epk === undefined);
            }
        });
    }
    await tcase('our JWE of 1 MiB and of 0 bytes decrypt in node-jose', async () => {
        const key = await jose.importJWK(ourEcJwk, 'ECDH-ES+A256KW');
        for (const pt of [big, Buffer.alloc(0)]) {
            const jwe = text(tool(['seal', ourEc, '-', file(pt)]));
            const r = await jose.compactDecrypt(jwe, key);
            assert(Buffer.compare(Buffer.from(r.plaintext), pt) === 0);
        }
    });
    await tcase('our JWE for a node public key decrypts in node-jose', async () => {
        const pub = file(JSON.stringify(await jose.exportJWK(nodeEc.publicKey)));
        const jwe = text(tool(['seal', pub, '-', file(message)]));
        const r = await jose.compactDecrypt(jwe, nodeEc.privateKey);
        assert(Buffer.from(r.plaintext).toString() === message);
    });

    // --- node JWE -> ours ----------------------------------------------------
    const nodeJwe = async (pt, header, pubKey, kmParams) => {
        let e = new jose.CompactEncrypt(pt).setProtectedHeader(header);
        if (kmParams) e = e.setKeyManagementParameters(kmParams);
        return e.encrypt(pubKey);
    };
    const ourEcPub = await jose.importJWK({ kty: 'EC', crv: 'P-256', x: ourEcJwk.x, y: ourEcJwk.y }, 'ECDH-ES+A256KW');
    const ourRsaPub = await jose.importJWK({ kty: 'RSA', n: ourRsaJwk.n, e: ourRsaJwk.e }, 'RSA-OAEP-256');
    for (const [name, pub, keyFile, alg] of [
        ['ECDH-ES+A256KW (our key)', ourEcPub, ourEc, 'ECDH-ES+A256KW'],
        ['RSA-OAEP-256 (our key)', ourRsaPub, ourRsa, 'RSA-OAEP-256'],
        ['ECDH-ES+A256KW (node key)', nodeEc.publicKey, nodeEcFile, 'ECDH-ES+A256KW'],
        ['RSA-OAEP-256 (node key)', nodeRsa.publicKey, nodeRsaFile, 'RSA-OAEP-256'],
    ]) {
        await tcase(`node-jose ${name} JWE opens with ours`, async () => {
            const jwe = await nodeJwe(enc.encode(message), { alg, enc: 'A256GCM' }, pub);
            assert(tool(['open', keyFile, file(jwe)]).toString() === message);
        });
    }
    await tcase('node-jose JWE with apu/apv opens with ours', async () => {
        const jwe = await nodeJwe(enc.encode(message), { alg: 'ECDH-ES+A256KW', enc: 'A256GCM' }, ourEcPub,
            { apu: enc.encode('Fachverfahren 1'), apv: enc.encode('Postfach') });
        assert(tool(['open', ourEc, file(jwe)]).toString() === message);
    });
    await tcase('node-jose JWE of 1 MiB opens with ours', async () => {
        const jwe = await nodeJwe(big, { alg: 'RSA-OAEP-256', enc: 'A256GCM' }, ourRsaPub);
        assert(Buffer.compare(tool(['open', ourRsa, file(jwe)]), big) === 0);
    });
    for (const [name, header, pub] of [
        ['enc A128GCM', { alg: 'ECDH-ES+A256KW', enc: 'A128GCM' }, ourEcPub],
        ['enc A256CBC-HS512', { alg: 'ECDH-ES+A256KW', enc: 'A256CBC-HS512' }, ourEcPub],
        ['alg ECDH-ES (direct)', { alg: 'ECDH-ES', enc: 'A256GCM' }, ourEcPub],
        ['alg ECDH-ES+A128KW', { alg: 'ECDH-ES+A128KW', enc: 'A256GCM' }, ourEcPub],
        ['alg RSA-OAEP (SHA-1)', { alg: 'RSA-OAEP', enc: 'A256GCM' }, null],
        ['zip DEF', { alg: 'ECDH-ES+A256KW', enc: 'A256GCM', zip: 'DEF' }, ourEcPub],
    ]) {
        await tcase(`node-jose JWE with ${name} is refused with "cannot decrypt"`, async () => {
            const key = pub || await jose.importJWK({ kty: 'RSA', n: ourRsaJwk.n, e: ourRsaJwk.e }, 'RSA-OAEP');
            const jwe = await nodeJwe(enc.encode(message), header, key);
            const err = tool(['open', pub ? ourEc : ourRsa, file(jwe)], true);
            assert(err === 'open: cannot decrypt', err);
        });
    }
    await tcase('node-jose JWE for another key is refused', async () => {
        const jwe = await nodeJwe(enc.encode(message), { alg: 'ECDH-ES+A256KW', enc: 'A256GCM' }, nodeEc.publicKey);
        assert(tool(['open', ourEc, file(jwe)], true) === 'open: cannot decrypt');
    });

    // --- our JWS, receipts and tokens -> node ------------------------------------
    const ourJwks = JSON.parse(text(tool(['jwks', ourEc])));
    const ourSet = jose.createLocalJWKSet(ourJwks);
    await tcase('our ES256 JWS verifies in node-jose', async () => {
        const payload = '{"hello":"Welt","n":1}';
        const jws = text(tool(['sign', ourEc, '-', file(payload)]));
        const r = await jose.compactVerify(jws, ourSet, { algorithms: ['ES256'] });
        assert(Buffer.from(r.payload).toString() === payload);
        assert(r.protectedHeader.kid === ourEcJwk.kid);
    });
    await tcase('our receipt verifies in node-jose (jwtVerify, typ secevent+jwt)', async () => {
        const tok = text(tool(['receipt', ourEc, 'https://postfach.example.de', 'finanzamt', 'citizen-1', 'read']));
        const r = await jose.jwtVerify(tok, ourSet, {
            issuer: 'https://postfach.example.de', audience: 'finanzamt', typ: 'secevent+jwt', algorithms: ['ES256'] });
        const ev = r.payload.events['urn:postfach:event:read'];
        assert(ev && ev.mailbox === 'citizen-1' && typeof ev.time_ms === 'number', JSON.stringify(r.payload));
        assert(new Date(ev.time).getTime() === ev.time_ms, 'time and time_ms agree');
        assert(r.payload.txn === 'interop-request-1');
        // and our verifier reads it back
        const back = JSON.parse(text(tool(['verify-receipt', file(JSON.stringify(ourJwks)), 'https://postfach.example.de', file(tok)])));
        assert(back.jti === r.payload.jti && back.event === 'read' && back.sub === r.payload.sub);
    });
    await tcase('our minted token verifies in node-jose (jwtVerify, typ JWT)', async () => {
        const tok = text(tool(['mint', ourEc, 'https://idp.example.de', 'postfach', 'citizen-1', 'hoch', String(NOW), '300']));
        const r = await jose.jwtVerify(tok, ourSet, {
            issuer: 'https://idp.example.de', audience: 'postfach', typ: 'JWT', algorithms: ['ES256'], maxTokenAge: 300 });
        assert(r.payload.sub === 'citizen-1' && r.payload.acr === 'hoch' && r.payload.exp === NOW + 300);
    });

    // --- node JWTs -> our pf_token_verify --------------------------------------------
    const idp = {};
    const idpJwks = { keys: [] };
    for (const [alg, opts] of [['ES256', {}], ['PS256', { modulusLength: 2048 }], ['RS256', { modulusLength: 3072 }]]) {
        idp[alg] = await jose.generateKeyPair(alg, opts);
        idpJwks.keys.push({ ...(await jose.exportJWK(idp[alg].publicKey)), kid: 'idp-' + alg, use: 'sig', alg });
    }
    const idpFile = file(JSON.stringify(idpJwks));
    const jwt = (alg, claims, hdr) => new jose.SignJWT({ acr: 'substantiell', ...claims })
        .setProtectedHeader({ alg, kid: 'idp-' + alg, typ: 'JWT', ...hdr })
        .setIssuer('https://idp.example.de').setAudience('postfach').setSubject('citizen-4711')
        .setIssuedAt(NOW).setExpirationTime(NOW + 600);
    for (const alg of ['ES256', 'PS256', 'RS256']) {
        await tcase(`node-jose ${alg} JWT verifies with pf_token_verify`, async () => {
            const tok = await jwt(alg).sign(idp[alg].privateKey);
            const c = JSON.parse(text(tool(['verify-token', idpFile, 'https://idp.example.de', 'postfach', String(NOW), file(tok)])));
            assert(c.sub === 'citizen-4711' && c.level === 'substantiell' && c.exp === NOW + 600, JSON.stringify(c));
        });
    }
    const refusals = [
        ['expired', async () => jwt('ES256').setExpirationTime(NOW - 120).setIssuedAt(NOW - 720).sign(idp.ES256.privateKey), 'token expired'],
        ['not yet valid', async () => jwt('PS256').setNotBefore(NOW + 3600).sign(idp.PS256.privateKey), 'token not yet valid'],
        ['wrong audience', async () => jwt('RS256').setAudience('someone-else').sign(idp.RS256.privateKey), 'wrong audience'],
        ['wrong issuer', async () => jwt('ES256').setIssuer('https://evil.example').sign(idp.ES256.privateKey), 'wrong issuer'],
        ['HS256', async () => new jose.SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'idp-ES256' })
            .setIssuer('https://idp.example.de').setAudience('postfach').setSubject('x').setExpirationTime(NOW + 60)
            .sign(enc.encode(JSON.stringify(idpJwks.keys[0]))), 'unsupported algorithm'],
        ['unsecured (alg none)', async () => new jose.UnsecuredJWT({ sub: 'x' }).setIssuer('https://idp.example.de')
            .setAudience('postfach').setExpirationTime(NOW + 60).encode(), 'unsupported algorithm'],
        ['PS256 header on an RS256 key', async () => jwt('PS256', {}, { kid: 'idp-RS256' }).sign(idp.RS256.privateKey), 'unsupported algorithm'],
        ['RS256 signature under the PS256 kid', async () => jwt('RS256', {}, { kid: 'idp-PS256' }).sign(idp.PS256.privateKey), 'unsupported algorithm'],
        ['ES256 signature by a key not in the set', async () => jwt('ES256').sign((await jose.generateKeyPair('ES256')).privateKey), 'bad signature'],
        ['unknown kid', async () => jwt('ES256', {}, { kid: 'idp-x' }).sign(idp.ES256.privateKey), 'unknown key'],
        ['crit', async () => jwt('ES256', {}, { crit: ['exp'], exp: 1 }).sign(idp.ES256.privateKey, { crit: { exp: true } }), 'malformed token'],
    ];
    for (const [name, make, want] of refusals) {
        await tcase(`node-jose JWT (${name}) is refused: ${want}`, async () => {
            const tok = await make();
            const err = tool(['verify-token', idpFile, 'https://idp.example.de', 'postfach', String(NOW), file(tok)], true);
            assert(err === 'verify-token: ' + want, err);
        });
    }
});
