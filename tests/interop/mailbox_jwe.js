// Independent JOSE implementation for the mailbox interop test: Debian's
// node-jose package (panva's jose).  Run with NODE_PATH=/usr/share/nodejs.
//   node mailbox_jwe.js decrypt PRIVATE_JWK_FILE JWE_FILE      -> plaintext on stdout
//   node mailbox_jwe.js encrypt PUBLIC_JWK_FILE PLAINTEXT_FILE -> compact JWE on stdout
'use strict';
const fs = require('fs');
const jose = require('jose');

const ALGS = ['ECDH-ES+A256KW', 'RSA-OAEP-256'];

async function main() {
  const [cmd, keyFile, dataFile] = process.argv.slice(2);
  const jwk = JSON.parse(fs.readFileSync(keyFile, 'utf8'));
  const alg = jwk.kty === 'RSA' ? 'RSA-OAEP-256' : 'ECDH-ES+A256KW';
  const key = await jose.importJWK(jwk, alg);
  if (cmd === 'decrypt') {
    const jwe = fs.readFileSync(dataFile, 'utf8').trim();
    const { plaintext, protectedHeader } = await jose.compactDecrypt(jwe, key, {
      keyManagementAlgorithms: ALGS,
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    if (protectedHeader.enc !== 'A256GCM' || protectedHeader.alg !== alg) {
      throw new Error('unexpected header ' + JSON.stringify(protectedHeader));
    }
    process.stdout.write(Buffer.from(plaintext));
  } else if (cmd === 'encrypt') {
    const plaintext = fs.readFileSync(dataFile);
    const jwe = await new jose.CompactEncrypt(plaintext)
      .setProtectedHeader({ alg, enc: 'A256GCM', kid: jwk.kid, cty: 'application/vnd.postfach.notice+json' })
      .encrypt(key);
    process.stdout.write(jwe);
  } else {
    throw new Error('usage: mailbox_jwe.js decrypt|encrypt KEYFILE DATAFILE');
  }
}

main().catch((e) => {
  process.stderr.write('mailbox_jwe: ' + e.message + '\n');
  process.exit(1);
});
