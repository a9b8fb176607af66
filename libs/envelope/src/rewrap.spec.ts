import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';
import {
  EnvelopeAuthenticationError,
  EnvelopeKeyMismatchError,
  EnvMasterKey,
  kekIdOfEnvelope,
  MasterKeys,
  openEnvelope,
  rewrapEnvelope,
  sealEnvelope,
} from './index';

const OLD = new SecretBytes(createHash('sha256').update('rewrap spec old master').digest());
const NEW = new SecretBytes(createHash('sha256').update('rewrap spec new master').digest());
const CONTEXT = 'node-credential:5f0c1e2d';
const PLAINTEXT = Buffer.from('an HMAC key of a node credential, 32 bytes long!');

function kekIdV1(key: SecretBytes): Buffer {
  return createHash('sha256').update('rackseal.envelope.kek-id.v1\n').update(key.reveal()).digest().subarray(0, 8);
}

/**
 * A version-1 blob written from the layout in envelope.ts's header comment with node:crypto alone
 * (what issue 11's code sealed): both layers' AAD = label ‖ blob[0..13) ‖ context.
 */
function sealV1(master: SecretBytes, context: string, plaintext: Buffer): Buffer {
  const header = Buffer.alloc(101);
  header[0] = 0x01;
  kekIdV1(master).copy(header, 1);
  header.writeUInt32BE(plaintext.length, 9);
  const dek = randomBytes(32);
  const wrapNonce = randomBytes(12);
  const wrap = createCipheriv('aes-256-gcm', master.reveal(), wrapNonce);
  wrap.setAAD(Buffer.concat([Buffer.from('rackseal.envelope.v1.dek\n'), header.subarray(0, 13), Buffer.from(context)]));
  Buffer.concat([wrap.update(dek), wrap.final()]).copy(header, 25);
  wrapNonce.copy(header, 13);
  wrap.getAuthTag().copy(header, 57);
  const dataNonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', dek, dataNonce);
  cipher.setAAD(Buffer.concat([Buffer.from('rackseal.envelope.v1.dat\n'), header.subarray(0, 13), Buffer.from(context)]));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  dataNonce.copy(header, 73);
  cipher.getAuthTag().copy(header, 85);
  return Buffer.concat([header, ciphertext]);
}

function thrown(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
}

describe('version 1 blobs (sealed before master-key providers)', () => {
  it('still open, under the env key whose KEK ID they carry', () => {
    const blob = sealV1(OLD, CONTEXT, PLAINTEXT);
    expect(openEnvelope(OLD, CONTEXT, blob).reveal().equals(PLAINTEXT)).toBe(true);
    expect(kekIdOfEnvelope(blob)).toBe(kekIdV1(OLD).toString('hex'));
    expect(thrown(() => openEnvelope(OLD, 'node-credential:other', blob))).toBeInstanceOf(EnvelopeAuthenticationError);
  });

  it('cannot be relabelled: a version-2 blob with its version byte set to 1 (or back) does not open', () => {
    const v2 = sealEnvelope(OLD, CONTEXT, PLAINTEXT);
    const asV1 = Buffer.from(v2);
    asV1[0] = 0x01;
    expect((thrown(() => openEnvelope(OLD, CONTEXT, asV1)) as EnvelopeAuthenticationError).layer).toBe('data-key');
    const asV2 = sealV1(OLD, CONTEXT, PLAINTEXT);
    asV2[0] = 0x02;
    expect((thrown(() => openEnvelope(OLD, CONTEXT, asV2)) as EnvelopeAuthenticationError).layer).toBe('data-key');
  });
});

describe('MasterKeys', () => {
  it('seals under the current key and opens under whichever key the blob names', () => {
    const old = new EnvMasterKey(OLD);
    const fresh = new EnvMasterKey(NEW);
    const underOld = sealEnvelope(old, CONTEXT, PLAINTEXT);
    const ring = new MasterKeys(fresh, [old]);
    const underNew = sealEnvelope(ring, CONTEXT, PLAINTEXT);
    expect(kekIdOfEnvelope(underNew)).toBe(fresh.kekId.toString('hex'));
    expect(openEnvelope(ring, CONTEXT, underOld).reveal().equals(PLAINTEXT)).toBe(true);
    expect(openEnvelope(ring, CONTEXT, underNew).reveal().equals(PLAINTEXT)).toBe(true);
    // Without the previous key, the old blob is refused by KEK ID, naming both.
    const error = thrown(() => openEnvelope(new MasterKeys(fresh), CONTEXT, underOld));
    expect(error).toBeInstanceOf(EnvelopeKeyMismatchError);
    expect((error as EnvelopeKeyMismatchError).foundKekId).toBe(old.kekId.toString('hex'));
    expect((error as EnvelopeKeyMismatchError).expectedKekId).toBe(fresh.kekId.toString('hex'));
  });
});

describe('rewrapEnvelope', () => {
  const old = new EnvMasterKey(OLD);
  const fresh = new EnvMasterKey(NEW);

  it('re-wraps a version-2 blob: only the KEK ID and the DEK wrap change, the data ciphertext stays byte for byte', () => {
    const blob = sealEnvelope(old, CONTEXT, PLAINTEXT);
    const rewrapped = rewrapEnvelope(old, fresh, CONTEXT, blob)!;
    expect(rewrapped.length).toBe(blob.length);
    expect(rewrapped[0]).toBe(0x02);
    expect(rewrapped.subarray(1, 9).equals(fresh.kekId)).toBe(true);
    expect(rewrapped.subarray(9, 13).equals(blob.subarray(9, 13))).toBe(true);
    expect(rewrapped.subarray(13, 73).equals(blob.subarray(13, 73))).toBe(false);
    expect(rewrapped.subarray(73).equals(blob.subarray(73))).toBe(true);
    expect(openEnvelope(fresh, CONTEXT, rewrapped).reveal().equals(PLAINTEXT)).toBe(true);
    expect(thrown(() => openEnvelope(old, CONTEXT, rewrapped))).toBeInstanceOf(EnvelopeKeyMismatchError);
  });

  it('answers undefined for a blob already under the new key (a resumed rotation skips it)', () => {
    expect(rewrapEnvelope(old, fresh, CONTEXT, sealEnvelope(fresh, CONTEXT, PLAINTEXT))).toBeUndefined();
  });

  it('converts a version-1 blob to version 2 under the new key', () => {
    const rewrapped = rewrapEnvelope(old, fresh, CONTEXT, sealV1(OLD, CONTEXT, PLAINTEXT))!;
    expect(rewrapped[0]).toBe(0x02);
    expect(openEnvelope(fresh, CONTEXT, rewrapped).reveal().equals(PLAINTEXT)).toBe(true);
  });

  it('refuses a blob under neither key, under another context, or with modified data (nothing laundered)', () => {
    const stranger = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    expect(thrown(() => rewrapEnvelope(old, fresh, CONTEXT, sealEnvelope(stranger, CONTEXT, PLAINTEXT)))).toBeInstanceOf(EnvelopeKeyMismatchError);
    const blob = sealEnvelope(old, CONTEXT, PLAINTEXT);
    expect((thrown(() => rewrapEnvelope(old, fresh, 'node-credential:moved', blob)) as EnvelopeAuthenticationError).layer).toBe('data-key');
    const tampered = Buffer.from(blob);
    tampered[tampered.length - 1] = (tampered[tampered.length - 1] ?? 0) ^ 1;
    expect((thrown(() => rewrapEnvelope(old, fresh, CONTEXT, tampered)) as EnvelopeAuthenticationError).layer).toBe('data');
  });
});
