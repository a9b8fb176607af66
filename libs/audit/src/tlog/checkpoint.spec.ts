import { createHash, createPrivateKey, createPublicKey, sign } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';
import { envelopeKekId, openEnvelope, sealEnvelope } from '@rackseal/envelope';
import {
  type Checkpoint,
  CheckpointError,
  type CheckpointProblem,
  formatCheckpoint,
  generateAuditSigningKey,
  openCheckpoint,
  parseCheckpoint,
  signCheckpoint,
} from './checkpoint';
import { formatSignedNote, parseSignedNote, parseVerifierKey, SignedNoteError, signNote } from './signed-note';

const ORIGIN = 'rackseal.example/audit';
const KEY = generateAuditSigningKey(ORIGIN);
const SIGNER = { name: ORIGIN, privateKey: KEY.privateKey };
const ROOT = createHash('sha256').update('root').digest();
const TIME = new Date('2026-12-02T13:01:08.123Z');

/* The example body of c2sp.org/tlog-checkpoint (its signature's key is not published, so only the body is read). */
const C2SP_BODY = 'example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n';

function refusal<E extends Error>(type: new (...args: never[]) => E, run: () => unknown): E {
  try {
    run();
  } catch (error) {
    if (error instanceof type) {
      return error;
    }
    throw error;
  }
  throw new Error(`expected a ${type.name}`);
}

function expectCheckpointRefused(run: () => unknown, problem: CheckpointProblem, message: RegExp | string): void {
  const error = refusal(CheckpointError, run);
  expect(error.problem).toBe(problem);
  if (typeof message === 'string') {
    expect(error.message).toBe(message);
  } else {
    expect(error.message).toMatch(message);
  }
}

/** A note signed by the audit key over any body, to reach the checkpoint checks behind the signature. */
function signedBody(body: string): string {
  return signNote(body, SIGNER);
}

describe('generateAuditSigningKey', () => {
  it('returns an Ed25519 PKCS#8 private key kept as SecretBytes, its raw public key, key ID and vkey', () => {
    expect(KEY.privateKey).toBeInstanceOf(SecretBytes);
    expect(JSON.stringify(KEY)).not.toContain(KEY.privateKey.reveal().toString('base64'));
    const privateKey = createPrivateKey({ key: KEY.privateKey.reveal(), format: 'der', type: 'pkcs8' });
    expect(privateKey.asymmetricKeyType).toBe('ed25519');
    expect(KEY.publicKey.equals(Buffer.from(createPublicKey(privateKey).export({ format: 'jwk' }).x ?? '', 'base64url'))).toBe(true);
    expect(KEY.publicKey).toHaveLength(32);
    const keyId = createHash('sha256').update(`${ORIGIN}\n`).update(Buffer.from([0x01])).update(KEY.publicKey).digest().subarray(0, 4);
    expect(KEY.keyId).toBe(keyId.toString('hex'));
    expect(KEY.verifierKey).toBe(`${ORIGIN}+${KEY.keyId}+${Buffer.concat([Buffer.from([1]), KEY.publicKey]).toString('base64')}`);
    expect(parseVerifierKey(KEY.verifierKey).publicKey.equals(KEY.publicKey)).toBe(true);
  });

  it('makes a new key each time, and refuses a name that cannot be a key name', () => {
    expect(generateAuditSigningKey(ORIGIN).publicKey.equals(KEY.publicKey)).toBe(false);
    expect(refusal(SignedNoteError, () => generateAuditSigningKey('audit log')).problem).toBe('invalid-key-name');
    expect(refusal(SignedNoteError, () => generateAuditSigningKey('a+b')).problem).toBe('invalid-key-name');
  });

  it('survives envelope sealing: the private key opens again and signs checkpoints the vkey verifies', () => {
    const master = new SecretBytes(createHash('sha256').update('checkpoint spec master').digest());
    const context = `audit-signing-key:${KEY.keyId}`;
    const sealed = sealEnvelope(master, context, KEY.privateKey);
    expect(envelopeKekId(master)).toBe(sealed.subarray(1, 9).toString('hex'));
    const opened = openEnvelope(master, context, sealed);
    const note = signCheckpoint({ origin: ORIGIN, size: 1, rootHash: ROOT, time: TIME }, { name: ORIGIN, privateKey: opened });
    expect(openCheckpoint(note, KEY.verifierKey).size).toBe(1);
  });
});

describe('formatCheckpoint / parseCheckpoint', () => {
  it('reads the C2SP example body and writes it back identically', () => {
    const checkpoint = parseCheckpoint(C2SP_BODY);
    expect(checkpoint).toEqual({
      origin: 'example.com/behind-the-sofa',
      size: 20852163,
      rootHash: Buffer.from('0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62', 'hex'),
      extensions: [],
    });
    expect(formatCheckpoint(checkpoint)).toBe(C2SP_BODY);
  });

  it('writes size 0 as "0", keeps extension lines in order and round-trips them', () => {
    const checkpoint: Checkpoint = { origin: ORIGIN, size: 0, rootHash: ROOT, extensions: ['one', 'two words'] };
    const text = formatCheckpoint(checkpoint);
    expect(text).toBe(`${ORIGIN}\n0\n${ROOT.toString('base64')}\none\ntwo words\n`);
    expect(parseCheckpoint(text)).toEqual(checkpoint);
  });

  it.each([
    ['a non-canonical size like 007', `${ORIGIN}\n007\n${ROOT.toString('base64')}\n`, 'non-canonical-size', 'the tree size "007" is not a decimal number without leading zeros'],
    ['a size of 00', `${ORIGIN}\n00\n${ROOT.toString('base64')}\n`, 'non-canonical-size', /"00"/],
    ['a signed size', `${ORIGIN}\n+7\n${ROOT.toString('base64')}\n`, 'non-canonical-size', /"\+7"/],
    ['a size with a space', `${ORIGIN}\n 7\n${ROOT.toString('base64')}\n`, 'non-canonical-size', /" 7"/],
    ['an empty size', `${ORIGIN}\n\n${ROOT.toString('base64')}\n`, 'non-canonical-size', /""/],
    ['a size above 2^53 - 1', `${ORIGIN}\n9007199254740992\n${ROOT.toString('base64')}\n`, 'size-out-of-range', 'the tree size 9007199254740992 is above 2^53 - 1'],
    ['a 31-byte root hash', `${ORIGIN}\n7\n${ROOT.subarray(1).toString('base64')}\n`, 'wrong-root-hash-length', 'the root hash is 31 bytes, not 32'],
    ['a 33-byte root hash', `${ORIGIN}\n7\n${Buffer.concat([ROOT, Buffer.from([0])]).toString('base64')}\n`, 'wrong-root-hash-length', /33 bytes/],
    ['a root hash in hex (valid base64 of 48 bytes)', `${ORIGIN}\n7\n${ROOT.toString('hex')}\n`, 'wrong-root-hash-length', 'the root hash is 48 bytes, not 32'],
    ['a root hash without its padding', `${ORIGIN}\n7\n${ROOT.toString('base64').replace('=', '')}\n`, 'malformed-root-hash', 'the root hash line is not canonical base64'],
    ['a root hash in base64url', `${ORIGIN}\n7\n${ROOT.toString('base64url')}\n`, 'malformed-root-hash', /canonical base64/],
    ['an empty origin', `\n7\n${ROOT.toString('base64')}\n`, 'empty-origin', 'the checkpoint origin line is empty'],
    ['only two lines', `${ORIGIN}\n7\n`, 'malformed-body', 'the checkpoint text has 2 lines; it needs origin, size and root hash'],
    ['no final newline', `${ORIGIN}\n7\n${ROOT.toString('base64')}`, 'malformed-body', 'the checkpoint text must end with a newline'],
    ['an empty extension line', `${ORIGIN}\n7\n${ROOT.toString('base64')}\nx\n\n`, 'empty-extension', 'extension line 2 is empty'],
  ] as const)('refuses %s', (_what, text, problem, message) => {
    expectCheckpointRefused(() => parseCheckpoint(text), problem, message);
  });

  it('refuses to write what it would refuse to read', () => {
    expectCheckpointRefused(() => formatCheckpoint({ origin: ORIGIN, size: -1, rootHash: ROOT, extensions: [] }), 'size-out-of-range', /not -1/);
    expectCheckpointRefused(() => formatCheckpoint({ origin: ORIGIN, size: 1.5, rootHash: ROOT, extensions: [] }), 'size-out-of-range', /not 1.5/);
    expectCheckpointRefused(() => formatCheckpoint({ origin: ORIGIN, size: 1, rootHash: Buffer.alloc(20), extensions: [] }), 'wrong-root-hash-length', /20 bytes/);
    expectCheckpointRefused(() => formatCheckpoint({ origin: '', size: 1, rootHash: ROOT, extensions: [] }), 'empty-origin', /non-empty line/);
    expectCheckpointRefused(() => formatCheckpoint({ origin: ORIGIN, size: 1, rootHash: ROOT, extensions: ['a\nb'] }), 'empty-extension', /one non-empty line/);
  });
});

describe('signCheckpoint / openCheckpoint', () => {
  const note = signCheckpoint({ origin: ORIGIN, size: 42, rootHash: ROOT, time: TIME }, SIGNER);

  it('writes the checkpoint body, the timestamp line in Unix milliseconds, and one signature line by the audit key', () => {
    const parsed = parseSignedNote(note);
    expect(parsed.text).toBe(`${ORIGIN}\n42\n${ROOT.toString('base64')}\ntimestamp 1796216468123\n`);
    expect(parsed.signatures).toHaveLength(1);
    expect(parsed.signatures[0]?.name).toBe(ORIGIN);
    expect(parsed.signatures[0]?.keyId.toString(16).padStart(8, '0')).toBe(KEY.keyId);
    expect(note.endsWith('\n')).toBe(true);
    expect(note).toContain(`\n\n\u2014 ${ORIGIN} `);
  });

  it('opens it with the vkey (string or parsed) and returns the checkpoint and its time', () => {
    const opened = openCheckpoint(note, KEY.verifierKey);
    expect(opened).toEqual({ origin: ORIGIN, size: 42, rootHash: ROOT, extensions: ['timestamp 1796216468123'], time: TIME });
    expect(openCheckpoint(Buffer.from(note), parseVerifierKey(KEY.verifierKey)).time.toISOString()).toBe('2026-12-02T13:01:08.123Z');
  });

  it('signs size 0 and time 0', () => {
    const empty = signCheckpoint({ origin: ORIGIN, size: 0, rootHash: ROOT, time: new Date(0) }, SIGNER);
    expect(openCheckpoint(empty, KEY.verifierKey)).toMatchObject({ size: 0, time: new Date(0) });
  });

  it('ignores a witness cosignature by an unknown key', () => {
    const parsed = parseSignedNote(note);
    const witness = { name: 'witness.example/w1', keyId: 0x01020304, signature: Buffer.alloc(72, 9) };
    const cosigned = formatSignedNote({ text: parsed.text, signatures: [...parsed.signatures, witness] });
    expect(openCheckpoint(cosigned, KEY.verifierKey).size).toBe(42);
  });

  it('refuses a bad signature', () => {
    const parsed = parseSignedNote(note);
    const first = parsed.signatures[0];
    if (first === undefined) {
      throw new Error('no signature');
    }
    const flipped = Buffer.from(first.signature);
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    const bad = formatSignedNote({ text: parsed.text, signatures: [{ ...first, signature: flipped }] });
    const error = refusal(SignedNoteError, () => openCheckpoint(bad, KEY.verifierKey));
    expect(error.problem).toBe('invalid-signature');
    expect(error.message).toBe(`the signature by ${ORIGIN}+${KEY.keyId} does not verify: the note was modified or not signed by that key`);
  });

  it('refuses a modified body: size, root hash or time', () => {
    const edits = [
      note.replace('\n42\n', '\n43\n'),
      note.replace(ROOT.toString('base64'), createHash('sha256').update('other').digest().toString('base64')),
      note.replace('timestamp 1796216468123', 'timestamp 1796216468124'),
    ];
    for (const edited of edits) {
      expect(edited).not.toBe(note);
      expect(refusal(SignedNoteError, () => openCheckpoint(edited, KEY.verifierKey)).problem).toBe('invalid-signature');
    }
  });

  it('refuses a checkpoint signed by another key, even one of the same name', () => {
    const other = generateAuditSigningKey(ORIGIN);
    const error = refusal(SignedNoteError, () => openCheckpoint(note, other.verifierKey));
    expect(error.problem).toBe('no-known-signature');
    expect(error.message).toBe(`the note has no signature by a known key (known: ${ORIGIN}+${other.keyId}; signed by: ${ORIGIN}+${KEY.keyId})`);
  });

  it('refuses a vkey whose key ID does not match its key', () => {
    const wrongId = KEY.verifierKey.replace(`+${KEY.keyId}+`, `+${KEY.keyId === '00000000' ? '00000001' : '00000000'}+`);
    expect(refusal(SignedNoteError, () => openCheckpoint(note, wrongId)).problem).toBe('key-id-mismatch');
  });

  it('refuses a note without the blank line, and one with trailing garbage', () => {
    expect(refusal(SignedNoteError, () => openCheckpoint(note.replace('\n\n', '\n'), KEY.verifierKey)).problem).toBe('no-signature-block');
    expect(refusal(SignedNoteError, () => openCheckpoint(`${note}garbage\n`, KEY.verifierKey)).problem).toBe('malformed-signature-line');
    expect(refusal(SignedNoteError, () => openCheckpoint(`${note}x`, KEY.verifierKey)).problem).toBe('malformed-signature-line');
  });

  it('refuses, behind a valid signature, a body that is not a rackseal checkpoint', () => {
    const root = ROOT.toString('base64');
    expectCheckpointRefused(() => openCheckpoint(signedBody(`${ORIGIN}\n007\n${root}\ntimestamp 1\n`), KEY.verifierKey), 'non-canonical-size', /"007"/);
    expectCheckpointRefused(
      () => openCheckpoint(signedBody(`${ORIGIN}\n7\n${ROOT.subarray(0, 16).toString('base64')}\ntimestamp 1\n`), KEY.verifierKey),
      'wrong-root-hash-length',
      'the root hash is 16 bytes, not 32',
    );
    expectCheckpointRefused(() => openCheckpoint(signedBody(`${ORIGIN}\n7\n${root}\n`), KEY.verifierKey), 'missing-timestamp', 'the checkpoint has no "timestamp <unix ms>" extension line');
    expectCheckpointRefused(() => openCheckpoint(signedBody(`${ORIGIN}\n7\n${root}\ntime 1\n`), KEY.verifierKey), 'missing-timestamp', /is not "timestamp <unix ms>"/);
    for (const bad of ['007', '-1', '1.5', '', '99999999999999999', '8640000000000001']) {
      expectCheckpointRefused(() => openCheckpoint(signedBody(`${ORIGIN}\n7\n${root}\ntimestamp ${bad}\n`), KEY.verifierKey), 'malformed-timestamp', /is not Unix milliseconds/);
    }
    expectCheckpointRefused(
      () => openCheckpoint(signedBody(`${ORIGIN}\n7\n${root}\ntimestamp 1\nextra\n`), KEY.verifierKey),
      'unexpected-extension',
      'the checkpoint has 1 extension lines after its timestamp; rackseal writes none',
    );
    expectCheckpointRefused(
      () => openCheckpoint(signedBody(`other.example/log\n7\n${root}\ntimestamp 1\n`), KEY.verifierKey),
      'origin-mismatch',
      `the checkpoint origin "other.example/log" is not the key name "${ORIGIN}"`,
    );
  });

  it('refuses to sign for an origin that is not the key name, or a time before 1970', () => {
    expectCheckpointRefused(
      () => signCheckpoint({ origin: 'other.example/log', size: 1, rootHash: ROOT, time: TIME }, SIGNER),
      'origin-mismatch',
      `the signing key is named "${ORIGIN}" but the checkpoint origin is "other.example/log"`,
    );
    expectCheckpointRefused(() => signCheckpoint({ origin: ORIGIN, size: 1, rootHash: ROOT, time: new Date(-1) }, SIGNER), 'malformed-timestamp', /at or after 1970/);
    expectCheckpointRefused(() => signCheckpoint({ origin: ORIGIN, size: 1, rootHash: ROOT, time: new Date(NaN) }, SIGNER), 'malformed-timestamp', /valid date/);
  });

  it('is an Ed25519 signature over exactly the note text', () => {
    const parsed = parseSignedNote(note);
    const privateKey = createPrivateKey({ key: KEY.privateKey.reveal(), format: 'der', type: 'pkcs8' });
    expect(sign(null, Buffer.from(parsed.text), privateKey).equals(parsed.signatures[0]?.signature ?? Buffer.alloc(0))).toBe(true);
  });
});
