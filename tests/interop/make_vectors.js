// Regenerates the fixed JOSE test vectors in tests/data/jose/ with an
// independent implementation (Debian's node-jose, i.e. panva's jose v4).
// The C unit tests (tests/unit/test_jose.c, test_token.c) read these files,
// so they test our code against bytes we did not produce ourselves.
//
//   NODE_PATH=/usr/share/nodejs node tests/interop/make_vectors.js [outdir]
//
// Regenerating changes every file (fresh keys, random IVs); commit them
// together.  Times are fixed so that the tests can pass a fixed "now".
'use strict';
const fs = require('fs');
const path = require('path');
const jose = require('jose');

const out = process.argv[2] || path.join(__dirname, '..', 'data', 'jose');
const IAT = 1700000000; // 2023-11-14T22:13:20Z, the tests use now = IAT + 100
const PLAINTEXT = 'Postfach-Testvektor: Grüße von node-jose \u{1F4EC}\n';

function write(name, text) {
    fs.writeFileSync(path.join(out, name), text.endsWith('\n') ? text : text + '\n');
}

async function jwkPair(alg, opts, name) {
    const { publicKey, privateKey } = await jose.generateKeyPair(alg, opts);
    const priv = await jose.exportJWK(privateKey);
    const kid = await jose.calculateJwkThumbprint(priv);
    write(name + '.jwk', JSON.stringify(priv));
    return { publicKey, privateKey, kid, pub: await jose.exportJWK(publicKey) };
}

(async () => {
    fs.mkdirSync(out, { recursive: true });
    write('plaintext.txt', PLAINTEXT);

    // JWE made by node-jose for keys made by node-jose
    const ec = await jwkPair('ECDH-ES+A256KW', { crv: 'P-256' }, 'enc-p256');
    const rsa = await jwkPair('RSA-OAEP-256', { modulusLength: 3072 }, 'enc-rsa3072');
    const pt = new TextEncoder().encode(PLAINTEXT);
    write('ecdh-es-a256kw.jwe', await new jose.CompactEncrypt(pt)
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', kid: ec.kid, cty: 'text/plain' })
        .encrypt(ec.publicKey));
    // with PartyUInfo/PartyVInfo, which enter the Concat KDF
    write('ecdh-es-a256kw-apu-apv.jwe', await new jose.CompactEncrypt(pt)
        .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
        .setKeyManagementParameters({ apu: new TextEncoder().encode('Fachverfahren'),
                                      apv: new TextEncoder().encode('Postfach') })
        .encrypt(ec.publicKey));
    write('rsa-oaep-256.jwe', await new jose.CompactEncrypt(pt)
        .setProtectedHeader({ alg: 'RSA-OAEP-256', enc: 'A256GCM', kid: rsa.kid })
        .encrypt(rsa.publicKey));

    // identity-provider tokens: ES256, PS256, RS256 (RSA-2048, as IdPs use)
    const es = await jwkPair('ES256', {}, 'idp-es256');
    const ps = await jwkPair('PS256', { modulusLength: 2048 }, 'idp-ps256');
    const rs = await jwkPair('RS256', { modulusLength: 2048 }, 'idp-rs256');
    const jwks = { keys: [
        { ...es.pub, kid: 'idp-es', use: 'sig', alg: 'ES256' },
        { ...ps.pub, kid: 'idp-ps', use: 'sig', alg: 'PS256' },
        { ...rs.pub, kid: 'idp-rs', use: 'sig', alg: 'RS256' },
        // an encryption key and a key type we do not support: both skipped
        { ...rsa.pub, kid: 'idp-enc', use: 'enc' },
        { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'idp-ed' },
    ] };
    write('idp.jwks', JSON.stringify(jwks));
    const claims = { acr: 'substantiell' };
    for (const [alg, key, kid] of [['ES256', es, 'idp-es'], ['PS256', ps, 'idp-ps'], ['RS256', rs, 'idp-rs']]) {
        const jwt = await new jose.SignJWT(claims)
            .setProtectedHeader({ alg, kid, typ: 'JWT' })
            .setIssuer('https://idp.example.de')
            .setAudience(['postfach', 'other-service'])
            .setSubject('citizen-4711@example.de')
            .setIssuedAt(IAT)
            .setNotBefore(IAT)
            .setExpirationTime(IAT + 600)
            .setJti('a5d1c7e0-0000-4000-8000-000000000001')
            .sign(key.privateKey);
        write(alg.toLowerCase() + '.jwt', jwt);
    }
})().catch((e) => { console.error(e); process.exit(1); });
