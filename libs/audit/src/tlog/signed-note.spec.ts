import { createHash, generateKeyPairSync } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';
import {
  ed25519KeyId,
  formatSignedNote,
  formatVerifierKey,
  MAX_NOTE_BYTES,
  MAX_NOTE_SIGNATURES,
  parseSignedNote,
  parseVerifierKey,
  SignedNoteError,
  type SignedNoteProblem,
  signNote,
  verifyNote,
} from './signed-note';

/*
 * Known vectors. PeterNeumann and EnochRoot: numbers from golang.org/x/mod, sumdb/note/note_test.go
 * (github.com/golang/mod at commit fe2ec04f7c3c3aa6fad97631aafcff6e49e2d1db), BSD-3-Clause licence,
 * Copyright 2009 The Go Authors. The signing key there is written `PRIVATE+KEY+<name>+<id>+<base64(0x01 ‖
 * 32-byte Ed25519 seed)>`; only the seed is used here. example.com/foo: the example of c2sp.org/signed-note
 * §Verifier keys.
 */
const PETER_VKEY = 'PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW';
const PETER_SEED_WITH_TYPE = 'AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz';
const ENOCH_VKEY = 'EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop';
const GO_TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG = '— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n';
const ENOCH_SIG = '— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n';
const C2SP_VKEY = 'example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k';
const C2SP_NOTE =
  'This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n';

/** PKCS#8 DER of an Ed25519 seed: the fixed RFC 8410 §7 prefix, then the 32-byte seed. */
function pkcs8FromSeed(seed: Buffer): SecretBytes {
  return new SecretBytes(Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]));
}

const PETER_PRIVATE = pkcs8FromSeed(Buffer.from(PETER_SEED_WITH_TYPE, 'base64').subarray(1));

function newKey(name: string): { signer: { name: string; privateKey: SecretBytes }; vkey: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url');
  return {
    signer: { name, privateKey: new SecretBytes(privateKey.export({ format: 'der', type: 'pkcs8' })) },
    vkey: formatVerifierKey(name, raw),
  };
}

function refusal(run: () => unknown): SignedNoteError {
  try {
    run();
  } catch (error) {
    if (error instanceof SignedNoteError) {
      return error;
    }
    throw error;
  }
  throw new Error('expected a SignedNoteError');
}

function expectRefused(run: () => unknown, problem: SignedNoteProblem, message: RegExp | string): void {
  const error = refusal(run);
  expect(error.problem).toBe(problem);
  if (typeof message === 'string') {
    expect(error.message).toBe(message);
  } else {
    expect(error.message).toMatch(message);
  }
}

describe('verifier keys', () => {
  it('reads the Go and C2SP example keys, key ID included', () => {
    const peter = parseVerifierKey(PETER_VKEY);
    expect(peter.name).toBe('PeterNeumann');
    expect(peter.keyId).toBe(0xc74f20a3);
    expect(peter.publicKey.toString('base64')).toBe(Buffer.from(PETER_VKEY.split('+')[2] ?? '', 'base64').subarray(1).toString('base64'));
    expect(parseVerifierKey(C2SP_VKEY).keyId).toBe(0x530d903a);
    expect(parseVerifierKey(ENOCH_VKEY).keyId).toBe(0xaf0cfe78);
  });

  it('computes the key ID as SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4] and writes the vkey back identically', () => {
    const peter = parseVerifierKey(PETER_VKEY);
    const expected = createHash('sha256')
      .update(Buffer.concat([Buffer.from('PeterNeumann\n'), Buffer.from([0x01]), peter.publicKey]))
      .digest()
      .readUInt32BE(0);
    expect(ed25519KeyId('PeterNeumann', peter.publicKey)).toBe(expected);
    expect(formatVerifierKey('PeterNeumann', peter.publicKey)).toBe(PETER_VKEY);
    expect(formatVerifierKey('example.com/foo', parseVerifierKey(C2SP_VKEY).publicKey)).toBe(C2SP_VKEY);
  });

  it('refuses a vkey whose stated key ID is not its own', () => {
    expectRefused(
      () => parseVerifierKey(PETER_VKEY.replace('c74f20a3', 'c74f20a4')),
      'key-id-mismatch',
      'the verifier key states key ID c74f20a4 but its name and key give c74f20a3',
    );
    // Renaming the key changes its ID too (the name is hashed in).
    expectRefused(() => parseVerifierKey(PETER_VKEY.replace('PeterNeumann', 'PeterNeuman')), 'key-id-mismatch', /give [0-9a-f]{8}$/);
  });

  it('refuses other signature types, other key lengths and malformed parts, naming each', () => {
    // Go's own "unknown algorithm, with adjusted key hash" vector.
    expectRefused(
      () => parseVerifierKey('PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW'),
      'unsupported-signature-type',
      'the verifier key has signature type 0x65; only Ed25519 (0x01) is supported',
    );
    const longKey = Buffer.concat([Buffer.from([0x01]), parseVerifierKey(PETER_VKEY).publicKey, Buffer.from([0])]).toString('base64');
    expectRefused(
      () => parseVerifierKey(`PeterNeumann+c74f20a3+${longKey}`),
      'malformed-verifier-key',
      "the verifier key's Ed25519 public key is 33 bytes, not 32",
    );
    expectRefused(() => parseVerifierKey('PeterNeumann+c74f20a3'), 'malformed-verifier-key', /three parts/);
    expectRefused(() => parseVerifierKey(`${PETER_VKEY}+x`), 'malformed-verifier-key', /not canonical base64/);
    expectRefused(() => parseVerifierKey(PETER_VKEY.replace('c74f20a3', 'C74F20A3')), 'malformed-verifier-key', /8 lowercase hex digits/);
    expectRefused(() => parseVerifierKey(PETER_VKEY.replace('ARpc', 'AR-c')), 'malformed-verifier-key', /not canonical base64/);
    expectRefused(() => parseVerifierKey(PETER_VKEY.replace('PeterNeumann', 'Peter Neumann')), 'invalid-key-name', /without spaces/);
    expectRefused(() => parseVerifierKey(PETER_VKEY.replace('PeterNeumann', '')), 'invalid-key-name', /non-empty/);
    for (const space of ['\u00a0', '\u0085', '\u2003', '\u3000', '\u2028']) {
      expectRefused(() => formatVerifierKey(`Peter${space}Neumann`, parseVerifierKey(PETER_VKEY).publicKey), 'invalid-key-name', /without spaces/);
    }
  });

  it('reads a vkey whose base64 holds "+" (only the first two "+" separate parts)', () => {
    let vkey = '';
    for (let i = 0; vkey.split('+').length <= 3; i++) {
      vkey = formatVerifierKey('example.com/log', createHash('sha256').update(`key ${i}`).digest());
    }
    expect(vkey.split('+').length).toBeGreaterThan(3);
    expect(formatVerifierKey('example.com/log', parseVerifierKey(vkey).publicKey)).toBe(vkey);
  });

  it('refuses every substring and every single-character change of a vkey', () => {
    for (let i = 0; i < PETER_VKEY.length; i++) {
      for (let j = i + 1; j <= PETER_VKEY.length; j++) {
        if (i !== 0 || j !== PETER_VKEY.length) {
          expect(() => parseVerifierKey(PETER_VKEY.slice(i, j))).toThrow(SignedNoteError);
        }
      }
      const changed = PETER_VKEY.slice(0, i) + String.fromCharCode(PETER_VKEY.charCodeAt(i) + 1) + PETER_VKEY.slice(i + 1);
      expect(() => parseVerifierKey(changed)).toThrow(SignedNoteError);
    }
  });
});

describe('signNote', () => {
  it('reproduces the Go signature byte for byte (Ed25519 is deterministic)', () => {
    expect(signNote(GO_TEXT, { name: 'PeterNeumann', privateKey: PETER_PRIVATE })).toBe(`${GO_TEXT}\n${PETER_SIG}`);
  });

  it('uses U+2014 EM DASH and a space to start the signature line', () => {
    const note = signNote(GO_TEXT, { name: 'PeterNeumann', privateKey: PETER_PRIVATE });
    const line = Buffer.from(note.split('\n\n')[1] ?? '', 'utf8');
    expect(line.subarray(0, 4).toString('hex')).toBe('e2809420');
  });

  it('refuses a text without its final newline, a bad signer name and a key that is not Ed25519 PKCS#8', () => {
    expectRefused(() => signNote('abc', { name: 'PeterNeumann', privateKey: PETER_PRIVATE }), 'text-without-final-newline', 'the note text must end with a newline');
    expectRefused(() => signNote(GO_TEXT, { name: 'a+b', privateKey: PETER_PRIVATE }), 'invalid-key-name', /the signer name must be/);
    expectRefused(() => signNote(GO_TEXT, { name: 'x', privateKey: new SecretBytes(Buffer.from('not a key')) }), 'invalid-signing-key', 'the signing key is not a PKCS#8 DER private key');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'der', type: 'pkcs8' });
    expectRefused(() => signNote(GO_TEXT, { name: 'x', privateKey: new SecretBytes(ec) }), 'invalid-signing-key', 'the signing key is ec, not Ed25519');
    expectRefused(() => signNote('a\tb\n', { name: 'x', privateKey: PETER_PRIVATE }), 'control-character', 'the note holds control character U+0009 at offset 1');
  });
});

describe('verifyNote', () => {
  const peter = parseVerifierKey(PETER_VKEY);
  const enoch = parseVerifierKey(ENOCH_VKEY);

  it('verifies the Go and C2SP example notes', () => {
    expect(verifyNote(`${GO_TEXT}\n${PETER_SIG}`, peter)).toEqual({
      text: GO_TEXT,
      verifiedBy: [{ name: 'PeterNeumann', keyId: 0xc74f20a3, signature: expect.any(Buffer) }],
    });
    expect(verifyNote(C2SP_NOTE, parseVerifierKey(C2SP_VKEY)).text).toBe('This is an example message.\n');
    expect(verifyNote(Buffer.from(C2SP_NOTE, 'utf8'), parseVerifierKey(C2SP_VKEY)).text).toBe('This is an example message.\n');
  });

  it('ignores signatures by keys it was not given, and checks every one it was given', () => {
    const both = `${GO_TEXT}\n${PETER_SIG}${ENOCH_SIG}`;
    expect(verifyNote(both, peter).verifiedBy.map((s) => s.name)).toEqual(['PeterNeumann']);
    expect(verifyNote(both, [peter, enoch]).verifiedBy.map((s) => s.name)).toEqual(['PeterNeumann', 'EnochRoot']);
    // Enoch's signature modified: ignored when only Peter is asked about, refused when Enoch is.
    const badEnoch = ENOCH_SIG.slice(0, 60) + 'ABCD' + ENOCH_SIG.slice(64);
    expect(verifyNote(`${GO_TEXT}\n${PETER_SIG}${badEnoch}`, peter).verifiedBy).toHaveLength(1);
    expectRefused(() => verifyNote(`${GO_TEXT}\n${PETER_SIG}${badEnoch}`, [peter, enoch]), 'invalid-signature', /^the signature by EnochRoot\+af0cfe78 does not verify/);
  });

  it('refuses a bad signature by the known key', () => {
    const bad = PETER_SIG.slice(0, 60) + 'ABCD' + PETER_SIG.slice(64);
    expectRefused(
      () => verifyNote(`${GO_TEXT}\n${bad}`, peter),
      'invalid-signature',
      'the signature by PeterNeumann+c74f20a3 does not verify: the note was modified or not signed by that key',
    );
  });

  it('refuses a modified text', () => {
    expectRefused(() => verifyNote(`${GO_TEXT.replace('answer', 'Answer')}\n${PETER_SIG}`, peter), 'invalid-signature', /PeterNeumann\+c74f20a3 does not verify/);
    expectRefused(() => verifyNote(`x${GO_TEXT}\n${PETER_SIG}`, peter), 'invalid-signature', /does not verify/);
  });

  it('refuses a note signed by another key, even under the same name', () => {
    const impostor = newKey('PeterNeumann');
    const note = signNote(GO_TEXT, impostor.signer);
    expectRefused(
      () => verifyNote(note, peter),
      'no-known-signature',
      `the note has no signature by a known key (known: PeterNeumann+c74f20a3; signed by: PeterNeumann+${parseVerifierKey(impostor.vkey).keyId.toString(16).padStart(8, '0')})`,
    );
    expectRefused(() => verifyNote(`${GO_TEXT}\n${ENOCH_SIG}`, peter), 'no-known-signature', /signed by: EnochRoot\+af0cfe78\)$/);
  });

  it('refuses a signature line whose key ID does not match the key of that name', () => {
    // The key ID bytes of Peter's signature changed: by the spec it is then another key, and unknown.
    const wrongId = PETER_SIG.replace('x08g', 'xxxx');
    expectRefused(() => verifyNote(`${GO_TEXT}\n${wrongId}`, peter), 'no-known-signature', /known: PeterNeumann\+c74f20a3; signed by: PeterNeumann\+(?!c74f20a3)[0-9a-f]{8}\)$/);
  });
});

describe('parseSignedNote (strict format)', () => {
  const note = `${GO_TEXT}\n${PETER_SIG}`;

  it('splits at the last blank line: the text may hold blank lines of its own', () => {
    const text = 'first paragraph\n\nsecond paragraph\n';
    const signed = signNote(text, { name: 'PeterNeumann', privateKey: PETER_PRIVATE });
    expect(parseSignedNote(signed).text).toBe(text);
    expect(verifyNote(signed, parseVerifierKey(PETER_VKEY)).text).toBe(text);
  });

  it('round-trips through formatSignedNote', () => {
    expect(formatSignedNote(parseSignedNote(`${GO_TEXT}\n${PETER_SIG}${ENOCH_SIG}`))).toBe(`${GO_TEXT}\n${PETER_SIG}${ENOCH_SIG}`);
  });

  it.each([
    ['no blank line before the signatures', `${GO_TEXT}${PETER_SIG}`, 'no-signature-block', 'the note has no blank line before its signatures'],
    ['no signature at all', GO_TEXT, 'no-signature-block', 'the note has no blank line before its signatures'],
    ['a blank line and nothing after it', `${GO_TEXT}\n`, 'no-signature-block', 'the note has no signature lines after its last blank line'],
    ['a trailing blank line after the signatures', `${note}\n`, 'no-signature-block', 'the note has no signature lines after its last blank line'],
    ['the last line without its newline', note.slice(0, -1), 'malformed-signature-line', 'the last signature line does not end with a newline'],
    ['trailing garbage after the signatures', `${note}Unexpected line.\n`, 'malformed-signature-line', 'signature line 2 does not start with an em dash (U+2014) and a space'],
    ['a hyphen instead of the em dash', `${GO_TEXT}\n${PETER_SIG.replace('—', '-')}`, 'malformed-signature-line', /signature line 1 does not start with an em dash/],
    ['an en dash instead of the em dash', `${GO_TEXT}\n${PETER_SIG.replace('—', '\u2013')}`, 'malformed-signature-line', /em dash/],
    ['a name with a space', `${GO_TEXT}\n${PETER_SIG.replace('PeterNeumann', 'Bad Name')}`, 'malformed-signature', /not canonical base64/],
    ['a name with a plus', `${GO_TEXT}\n${PETER_SIG.replace('PeterNeumann', 'Peter+Neumann')}`, 'invalid-key-name', /the key name is empty or holds a space or "\+"/],
    ['an empty name', `${GO_TEXT}\n${PETER_SIG.replace('PeterNeumann', '')}`, 'invalid-key-name', /signature line 1/],
    ['no signature after the name', `${GO_TEXT}\n— PeterNeumann\n`, 'malformed-signature-line', /is not "— <key name> <base64 signature>"/],
    ['non-canonical base64', `${GO_TEXT}\n${PETER_SIG.replace('AM=', 'AN=')}`, 'malformed-signature', 'signature line 1: the signature is not canonical base64'],
    ['unpadded base64', `${GO_TEXT}\n${PETER_SIG.replace('AM=', 'AM')}`, 'malformed-signature', /not canonical base64/],
    ['a signature of only a key ID', `${GO_TEXT}\n— PeterNeumann x08gow==\n`, 'malformed-signature', 'signature line 1: the signature is 4 bytes, no more than its 4-byte key ID'],
    ['the same key twice', `${GO_TEXT}\n${PETER_SIG}${PETER_SIG}`, 'duplicate-signature', 'signature line 2: the note is signed twice by PeterNeumann+c74f20a3'],
    ['a control character', `\x01${note}`, 'control-character', 'the note holds control character U+0001 at offset 0'],
    ['a carriage return', note.replace('\n\n', '\r\n\n'), 'control-character', /U\+000D/],
    ['an unpaired surrogate', `\uD800${note}`, 'not-utf8', /unpaired UTF-16 surrogate/],
  ] as const)('refuses %s', (_what, text, problem, message) => {
    expectRefused(() => parseSignedNote(text), problem, message);
  });

  it('refuses bytes that are not UTF-8', () => {
    expectRefused(() => parseSignedNote(Buffer.concat([Buffer.from([0xff]), Buffer.from(note)])), 'not-utf8', 'the note is not valid UTF-8');
  });

  it(`reads ${MAX_NOTE_SIGNATURES} signatures and refuses one more`, () => {
    const lines = (n: number): string =>
      Array.from({ length: n }, (_, i) => `— key${i} ${Buffer.concat([Buffer.alloc(4, i), Buffer.alloc(64, 7)]).toString('base64')}\n`).join('');
    expect(parseSignedNote(`${GO_TEXT}\n${lines(MAX_NOTE_SIGNATURES)}`).signatures).toHaveLength(MAX_NOTE_SIGNATURES);
    expectRefused(
      () => parseSignedNote(`${GO_TEXT}\n${lines(MAX_NOTE_SIGNATURES + 1)}`),
      'too-many-signatures',
      `the note has ${MAX_NOTE_SIGNATURES + 1} signatures; at most ${MAX_NOTE_SIGNATURES} are read`,
    );
    expect(MAX_NOTE_SIGNATURES).toBeGreaterThanOrEqual(16);
  });

  it('refuses a note above the size limit before reading it', () => {
    const big = `${'x'.repeat(MAX_NOTE_BYTES)}\n\n${PETER_SIG}`;
    expectRefused(() => parseSignedNote(big), 'too-large', `the note is ${Buffer.byteLength(big)} bytes; at most ${MAX_NOTE_BYTES} are read`);
  });
});
