import { createHash } from 'node:crypto';
import { inspect } from 'node:util';
import { SecretBytes } from '@rackseal/config';
import {
  ENVELOPE_HEADER_BYTES,
  envelopeKekId,
  EnvelopeAuthenticationError,
  EnvelopeFormatError,
  EnvelopeKeyMismatchError,
  openEnvelope,
  sealEnvelope,
} from './index';

const MASTER = new SecretBytes(createHash('sha256').update('envelope spec master key').digest());
const OTHER_MASTER = new SecretBytes(createHash('sha256').update('another deployment').digest());
const CONTEXT = 'audit-signing-key:0f1e2d3c';
const PLAINTEXT = Buffer.from('a PKCS#8 private key, or any secret worth sealing: 0123456789abcdef');

function refusal(blob: Buffer, master = MASTER, context = CONTEXT): Error {
  try {
    openEnvelope(master, context, blob);
  } catch (error) {
    if (error instanceof Error) {
      return error;
    }
    throw error;
  }
  throw new Error('expected openEnvelope to refuse the blob');
}

describe('sealEnvelope / openEnvelope', () => {
  it('round-trips the plaintext, given as a Buffer or as SecretBytes, and answers SecretBytes', () => {
    const opened = openEnvelope(MASTER, CONTEXT, sealEnvelope(MASTER, CONTEXT, PLAINTEXT));
    expect(opened).toBeInstanceOf(SecretBytes);
    expect(opened.reveal().equals(PLAINTEXT)).toBe(true);
    expect(inspect(opened)).toBe('SecretBytes([redacted])');

    const fromSecret = sealEnvelope(MASTER, CONTEXT, new SecretBytes(PLAINTEXT));
    expect(openEnvelope(MASTER, CONTEXT, fromSecret).reveal().equals(PLAINTEXT)).toBe(true);
  });

  it('round-trips an empty plaintext and a 1 MiB one', () => {
    const empty = sealEnvelope(MASTER, CONTEXT, Buffer.alloc(0));
    expect(empty.length).toBe(ENVELOPE_HEADER_BYTES);
    expect(openEnvelope(MASTER, CONTEXT, empty).length).toBe(0);
    const big = createHash('sha512').update('x').digest().toString('hex').repeat(8192);
    const bigBytes = Buffer.from(big);
    expect(openEnvelope(MASTER, CONTEXT, sealEnvelope(MASTER, CONTEXT, bigBytes)).reveal().equals(bigBytes)).toBe(true);
  });

  it('writes the documented layout: version 2, the KEK ID, the length, then header + ciphertext', () => {
    const blob = sealEnvelope(MASTER, CONTEXT, PLAINTEXT);
    expect(blob.length).toBe(101 + PLAINTEXT.length);
    expect(blob[0]).toBe(0x02);
    const kekId = createHash('sha256').update('rackseal.envelope.kek-id.v1\n').update(MASTER.reveal()).digest().subarray(0, 8);
    expect(blob.subarray(1, 9).equals(kekId)).toBe(true);
    expect(envelopeKekId(MASTER)).toBe(kekId.toString('hex'));
    expect(blob.readUInt32BE(9)).toBe(PLAINTEXT.length);
  });

  it('draws the data key, then the wrap nonce, then the data nonce from the random source given', () => {
    let counter = 0;
    const draws: Buffer[] = [];
    const counting = (length: number): Buffer => {
      const bytes = Buffer.alloc(length, ++counter);
      draws.push(Buffer.from(bytes));
      return bytes;
    };
    const blob = sealEnvelope(MASTER, CONTEXT, PLAINTEXT, counting);
    expect(draws.map((d) => d.length)).toEqual([32, 12, 12]);
    expect(blob.subarray(13, 25).equals(Buffer.alloc(12, 2))).toBe(true);
    expect(blob.subarray(73, 85).equals(Buffer.alloc(12, 3))).toBe(true);
    // The same draws seal identically, and the blob opens: the data key is the first draw.
    counter = 0;
    expect(sealEnvelope(MASTER, CONTEXT, PLAINTEXT, counting).equals(blob)).toBe(true);
    expect(openEnvelope(MASTER, CONTEXT, blob).reveal().equals(PLAINTEXT)).toBe(true);
    expect(blob.includes(Buffer.alloc(32, 1))).toBe(false);
    expect(() => sealEnvelope(MASTER, CONTEXT, PLAINTEXT, (n) => Buffer.alloc(n - 1))).toThrow(
      new RangeError('the random source gave 31 bytes, not 32'),
    );
  });

  it('never writes the plaintext, nor the master key, into the blob', () => {
    const blob = sealEnvelope(MASTER, CONTEXT, PLAINTEXT);
    expect(blob.includes(PLAINTEXT)).toBe(false);
    // No 8-byte run of the plaintext either: GCM is a stream cipher, a slip would leak runs.
    for (let i = 0; i + 8 <= PLAINTEXT.length; i++) {
      expect(blob.includes(PLAINTEXT.subarray(i, i + 8))).toBe(false);
    }
    expect(blob.includes(MASTER.reveal().subarray(0, 8))).toBe(false);
  });

  it('seals the same plaintext differently each time (fresh data key and nonces)', () => {
    const a = sealEnvelope(MASTER, CONTEXT, PLAINTEXT);
    const b = sealEnvelope(MASTER, CONTEXT, PLAINTEXT);
    expect(a.subarray(0, 13).equals(b.subarray(0, 13))).toBe(true);
    expect(a.subarray(13, 25).equals(b.subarray(13, 25))).toBe(false);
    expect(a.subarray(25, 57).equals(b.subarray(25, 57))).toBe(false);
    expect(a.subarray(73, 85).equals(b.subarray(73, 85))).toBe(false);
    expect(a.subarray(101).equals(b.subarray(101))).toBe(false);
  });

  it('refuses every single-byte change of the blob with the error of the field it hits', () => {
    const blob = sealEnvelope(MASTER, CONTEXT, PLAINTEXT);
    for (let i = 0; i < blob.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const flipped = Buffer.from(blob);
        flipped[i] = (flipped[i] ?? 0) ^ mask;
        const error = refusal(flipped);
        if (i === 0) {
          expect(error).toBeInstanceOf(EnvelopeFormatError);
          expect(error.message).toMatch(/unknown envelope version 0x(03|82)/);
        } else if (i < 9) {
          expect(error).toBeInstanceOf(EnvelopeKeyMismatchError);
        } else if (i < 13) {
          // The length field: the blob is then truncated or has trailing bytes.
          expect(error).toBeInstanceOf(EnvelopeFormatError);
          expect(error.message).toMatch(/truncated|trailing/);
        } else {
          expect(error).toBeInstanceOf(EnvelopeAuthenticationError);
          expect((error as EnvelopeAuthenticationError).layer).toBe(i < 73 ? 'data-key' : 'data');
        }
      }
    }
  });

  it('refuses the blob under another context: it cannot move to another row or purpose', () => {
    const blob = sealEnvelope(MASTER, CONTEXT, PLAINTEXT);
    const error = refusal(blob, MASTER, 'audit-signing-key:0f1e2d3d');
    expect(error).toBeInstanceOf(EnvelopeAuthenticationError);
    expect(error.message).toBe(
      'the envelope for "audit-signing-key:0f1e2d3d" failed authentication (wrapped data key): it was modified, or it was sealed for another context',
    );
    expect(refusal(blob, MASTER, 'disk-key:0f1e2d3c')).toBeInstanceOf(EnvelopeAuthenticationError);
  });

  it('diagnoses another master key by its KEK ID, without trying to decrypt', () => {
    const blob = sealEnvelope(MASTER, CONTEXT, PLAINTEXT);
    const error = refusal(blob, OTHER_MASTER);
    expect(error).toBeInstanceOf(EnvelopeKeyMismatchError);
    expect((error as EnvelopeKeyMismatchError).foundKekId).toBe(envelopeKekId(MASTER));
    expect((error as EnvelopeKeyMismatchError).expectedKekId).toBe(envelopeKekId(OTHER_MASTER));
    expect(error.message).toBe(
      `the envelope was sealed under another master key (key ID ${envelopeKekId(MASTER)}, this deployment's is ` +
        `${envelopeKekId(OTHER_MASTER)}); was masterKey changed?`,
    );
  });

  it('refuses a truncated blob, a blob with trailing bytes and an unknown version by name', () => {
    const blob = sealEnvelope(MASTER, CONTEXT, PLAINTEXT);
    expect(refusal(Buffer.alloc(0)).message).toBe('the envelope is empty');
    expect(refusal(blob.subarray(0, 50)).message).toBe('the envelope is truncated: 50 bytes, shorter than its 101-byte header');
    const short = refusal(blob.subarray(0, blob.length - 1));
    expect(short).toBeInstanceOf(EnvelopeFormatError);
    expect(short.message).toBe(`the envelope is truncated: ${PLAINTEXT.length - 1} bytes of ciphertext, its header says ${PLAINTEXT.length}`);
    for (let cut = 1; cut < blob.length; cut++) {
      expect(refusal(blob.subarray(0, cut))).toBeInstanceOf(EnvelopeFormatError);
    }
    const long = refusal(Buffer.concat([blob, Buffer.from([0])]));
    expect(long).toBeInstanceOf(EnvelopeFormatError);
    expect(long.message).toBe(`the envelope has 1 trailing bytes after its ${PLAINTEXT.length}-byte ciphertext`);
    const v3 = Buffer.from(blob);
    v3[0] = 0x03;
    expect(refusal(v3).message).toBe('unknown envelope version 0x03 (this version reads 0x01 and 0x02)');
  });

  it('puts no key or plaintext bytes into any refusal message', () => {
    const blob = sealEnvelope(MASTER, CONTEXT, PLAINTEXT);
    const flipped = Buffer.from(blob);
    flipped[blob.length - 1] = (flipped[blob.length - 1] ?? 0) ^ 1;
    const secrets = [MASTER.reveal().toString('hex'), MASTER.reveal().toString('base64'), PLAINTEXT.toString('hex'), PLAINTEXT.toString()];
    for (const error of [refusal(flipped), refusal(blob, OTHER_MASTER), refusal(blob, MASTER, 'x:y')]) {
      for (const secret of secrets) {
        expect(`${error.message} ${inspect(error)}`).not.toContain(secret.slice(0, 16));
      }
    }
  });

  it('refuses a master key of the wrong length or type, and a context that is not printable ASCII', () => {
    expect(() => sealEnvelope(new SecretBytes(Buffer.alloc(16, 7)), CONTEXT, PLAINTEXT)).toThrow(
      new RangeError('the master key must be 32 bytes, not 16'),
    );
    expect(() => sealEnvelope(Buffer.alloc(32, 7) as unknown as SecretBytes, CONTEXT, PLAINTEXT)).toThrow(TypeError);
    for (const context of ['', 'has space', 'tab\there', 'ünicode', 'x'.repeat(257)]) {
      expect(() => sealEnvelope(MASTER, context, PLAINTEXT)).toThrow(/the envelope context must be 1 to 256 printable ASCII characters/);
    }
  });
});
