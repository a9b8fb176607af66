import { constants, createECDH, generateKeyPairSync, type KeyObject, privateDecrypt, randomBytes } from 'node:crypto';
import {
  CERTIFIED_DECRYPT_KEY_TEMPLATE,
  CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC,
  EK_TEMPLATE_RSA_L1,
  ekPubHash,
  KDFe,
  objectName,
  type RsaPublic,
  TPM_ALG_ID,
  TPMA_OBJECT,
  tpmtPublicFromKey,
} from '@rackseal/tpm2';
import { CONTENT_KEY_LABEL, CONTENT_KEY_OAEP_LABEL, wrapToCertifiedKey } from './certified-key-wrap';
import { openPayload } from './content-cipher';
import { type EcdhKeyTransport, MAX_ENVELOPE_BYTES, MAX_PAYLOAD_BYTES, type OaepKeyTransport, parseEnvelope, type ParsedEnvelope } from './envelope-format';
import { wrapToApprovedPcrPolicy } from './pcr-sealed-wrap';
import {
  EnvelopeAlgorithmError,
  EnvelopeAuthenticationError,
  EnvelopeFormatError,
  EnvelopeTooLargeError,
  EnvelopeVersionError,
  RecipientKeyError,
} from './wrapping-errors';

const ADDRESS = { deliveryId: 'dlv-0001', secretVersion: 3 };

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const rsaPublic = tpmtPublicFromKey(rsa.publicKey, CERTIFIED_DECRYPT_KEY_TEMPLATE);
const ecc = createECDH('prime256v1');
ecc.generateKeys();
const eccPublic = { ...CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC, unique: { x: ecc.getPublicKey().subarray(1, 33), y: ecc.getPublicKey().subarray(33) } };
const ek = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ekPublic = tpmtPublicFromKey(ek.publicKey, EK_TEMPLATE_RSA_L1);
const signingKeyName = Buffer.concat([Buffer.from('000b', 'hex'), randomBytes(32)]);

/** What the TPM does for RSA_Decrypt, with the private key in hand. */
function rsaContentKey(envelope: ParsedEnvelope, key: KeyObject): Buffer {
  const t = envelope.transport as OaepKeyTransport;
  return privateDecrypt({ key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: CONTENT_KEY_OAEP_LABEL }, t.encryptedKey);
}

/** What ECDH_ZGen and the agent's KDFe do, with the private scalar in hand. */
function eccContentKey(envelope: ParsedEnvelope): Buffer {
  const t = envelope.transport as EcdhKeyTransport;
  const Z = ecc.computeSecret(Buffer.concat([Buffer.of(4), t.ephemeral.x, t.ephemeral.y]));
  return KDFe(t.hashAlg, Z, CONTENT_KEY_LABEL, t.ephemeral.x, eccPublic.unique.x, 256);
}

const flip = (bytes: Buffer, at: number): Buffer => {
  const copy = Buffer.from(bytes);
  copy[at] = copy[at]! ^ 0x01;
  return copy;
};

/** Offset of the field after the common prefix: magic 4, version 1, binding 1, aead 2, deliveryId 2+n, secretVersion 4. */
const AFTER_COMMON = 4 + 1 + 1 + 2 + 2 + ADDRESS.deliveryId.length + 4;

describe('libs/wrapping envelope', () => {
  const payload = randomBytes(3000);

  it('certified-key RSA: the header says who and how, the OAEP content key opens the payload exactly', () => {
    const envelope = wrapToCertifiedKey(rsaPublic, payload, ADDRESS);
    const parsed = parseEnvelope(envelope);
    expect({ deliveryId: parsed.deliveryId, secretVersion: parsed.secretVersion, binding: parsed.transport.binding }).toEqual({ ...ADDRESS, binding: 'certified-key' });
    const t = parsed.transport as OaepKeyTransport;
    expect({ keyTransport: t.keyTransport, hashAlg: t.hashAlg, recipient: t.recipient.toString('hex'), ct: t.encryptedKey.length }).toEqual({
      keyTransport: TPM_ALG_ID.TPM_ALG_OAEP,
      hashAlg: TPM_ALG_ID.TPM_ALG_SHA256,
      recipient: objectName(rsaPublic).toString('hex'),
      ct: 256,
    });
    const contentKey = rsaContentKey(parsed, rsa.privateKey);
    expect(contentKey).toHaveLength(32);
    expect(openPayload(parsed, contentKey).equals(payload)).toBe(true);
    // No secret in clear: neither the content key nor the payload is in the envelope.
    expect(envelope.includes(contentKey)).toBe(false);
    expect(envelope.includes(payload.subarray(0, 16))).toBe(false);
  });

  it('certified-key ECC P-256: ephemeral ECDH and KDFe give the content key; two wraps differ', () => {
    const envelope = wrapToCertifiedKey(eccPublic, payload, ADDRESS);
    const parsed = parseEnvelope(envelope);
    const t = parsed.transport as EcdhKeyTransport;
    expect({ keyTransport: t.keyTransport, curve: t.curveID, x: t.ephemeral.x.length }).toEqual({ keyTransport: TPM_ALG_ID.TPM_ALG_ECDH, curve: 3, x: 32 });
    expect(openPayload(parsed, eccContentKey(parsed)).equals(payload)).toBe(true);
    expect(wrapToCertifiedKey(eccPublic, payload, ADDRESS).equals(envelope)).toBe(false);
  });

  it('pcr-sealed: records the EK\'s ekPubHash, group, epoch and signing key Name, and the import blob', () => {
    const parsed = parseEnvelope(wrapToApprovedPcrPolicy({ ekPublic, group: 'workers', epoch: 2, signingKeyName }, payload, ADDRESS));
    expect(parsed.transport.binding).toBe('pcr-sealed');
    if (parsed.transport.binding !== 'pcr-sealed') {
      return;
    }
    expect({ recipient: parsed.transport.recipient.toString('hex'), group: parsed.transport.group, epoch: parsed.transport.epoch, signer: parsed.transport.signingKeyName.equals(signingKeyName) }).toEqual({
      recipient: ekPubHash(ekPublic),
      group: 'workers',
      epoch: 2,
      signer: true,
    });
    expect(parsed.transport.blob.inSymSeed.length).toBe(2 + 256);
  });

  describe('refusals', () => {
    const rsaEnvelope = wrapToCertifiedKey(rsaPublic, Buffer.from('payload'), ADDRESS);
    const at = {
      version: 4,
      binding: 5,
      aead: 6,
      deliveryId: 10,
      secretVersion: AFTER_COMMON - 4,
      keyTransport: AFTER_COMMON + 2 + 34,
      hashAlg: AFTER_COMMON + 2 + 34 + 2,
    };
    const put16 = (bytes: Buffer, offset: number, value: number) => {
      const copy = Buffer.from(bytes);
      copy.writeUInt16BE(value, offset);
      return copy;
    };
    const refusal = (bytes: Buffer) => {
      try {
        parseEnvelope(bytes);
      } catch (error) {
        return error;
      }
      throw new Error('parsed');
    };

    it.each([
      ['a bad magic', () => flip(rsaEnvelope, 0), EnvelopeFormatError, /magic/],
      ['version 2', () => put16(rsaEnvelope, at.version, 0x0201), EnvelopeVersionError, /version 2/],
      ['binding 3', () => { const b = Buffer.from(rsaEnvelope); b[at.binding] = 3; return b; }, EnvelopeFormatError, /binding 3/],
      ['AEAD_AES_128_GCM', () => put16(rsaEnvelope, at.aead, 1), EnvelopeAlgorithmError, /aead 0x0001/],
      ['a delivery id with a space', () => { const b = Buffer.from(rsaEnvelope); b[at.deliveryId] = 0x20; return b; }, EnvelopeFormatError, /deliveryId/],
      ['secret version 0', () => { const b = Buffer.from(rsaEnvelope); b.writeUInt32BE(0, at.secretVersion); return b; }, EnvelopeFormatError, /secretVersion/],
      ['RSAES (PKCS#1 v1.5) key transport', () => put16(rsaEnvelope, at.keyTransport, TPM_ALG_ID.TPM_ALG_RSAES), EnvelopeAlgorithmError, /keyTransport 0x0015/],
      ['SHA-1 as OAEP hash', () => put16(rsaEnvelope, at.hashAlg, TPM_ALG_ID.TPM_ALG_SHA1), EnvelopeAlgorithmError, /hashAlg 0x0004/],
      ['a recipient that is not a Name', () => put16(rsaEnvelope, AFTER_COMMON + 2, 0x0099), EnvelopeFormatError, /recipient is not a key's Name/],
      ['a trailing byte', () => Buffer.concat([rsaEnvelope, Buffer.of(0)]), EnvelopeFormatError, /trailing|remain|left/i],
      ['a truncated tag', () => rsaEnvelope.subarray(0, rsaEnvelope.length - 1), EnvelopeFormatError, /tag/],
      ['an empty buffer', () => Buffer.alloc(0), EnvelopeFormatError, /magic/],
    ] as const)('%s', (_what, make, type, message) => {
      const error = refusal(make());
      expect(error).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(message);
    });

    it('an ECC envelope on an unsupported curve (P-192) is refused by name', () => {
      const envelope = wrapToCertifiedKey(eccPublic, Buffer.from('x'), ADDRESS);
      const error = refusal(put16(envelope, at.hashAlg + 2, 0x0001));
      expect(error).toBeInstanceOf(EnvelopeAlgorithmError);
      expect((error as Error).message).toMatch(/curveID 0x0001/);
    });

    it('pcr-sealed: a policy hash other than SHA-256, epoch 0, a damaged import blob are refused', () => {
      const envelope = wrapToApprovedPcrPolicy({ ekPublic, group: 'g', epoch: 1, signingKeyName }, Buffer.from('x'), ADDRESS);
      const policyHashAt = AFTER_COMMON + 2 + 32;
      expect(refusal(put16(envelope, policyHashAt, TPM_ALG_ID.TPM_ALG_SHA1))).toBeInstanceOf(EnvelopeAlgorithmError);
      const epochAt = policyHashAt + 2 + 2 + 1;
      const zeroEpoch = Buffer.from(envelope);
      zeroEpoch.writeUInt32BE(0, epochAt);
      expect((refusal(zeroEpoch) as Error).message).toMatch(/epoch/);
      const publicAt = epochAt + 4 + 2 + 34;
      const keyedHash = put16(envelope, publicAt + 2, TPM_ALG_ID.TPM_ALG_RSA);
      expect(refusal(keyedHash)).toBeInstanceOf(EnvelopeFormatError);
    });

    it('size limits: a payload over 1 MiB is not wrapped, an envelope over the limit or claiming more is not parsed', () => {
      expect(() => wrapToCertifiedKey(rsaPublic, Buffer.alloc(MAX_PAYLOAD_BYTES + 1), ADDRESS)).toThrow(EnvelopeTooLargeError);
      expect(wrapToCertifiedKey(rsaPublic, Buffer.alloc(MAX_PAYLOAD_BYTES), ADDRESS).length).toBeLessThan(MAX_ENVELOPE_BYTES);
      expect(refusal(Buffer.alloc(MAX_ENVELOPE_BYTES + 1))).toBeInstanceOf(EnvelopeTooLargeError);
      const lengthAt = rsaEnvelope.length - 16 - 'payload'.length - 4;
      const claims = Buffer.from(rsaEnvelope);
      claims.writeUInt32BE(MAX_PAYLOAD_BYTES + 1, lengthAt);
      const error = refusal(claims);
      expect(error).toBeInstanceOf(EnvelopeTooLargeError);
      expect((error as Error).message).toBe(`the payload is ${MAX_PAYLOAD_BYTES + 1} bytes; at most ${MAX_PAYLOAD_BYTES} are accepted`);
    });

    it('the header is authenticated: a flipped delivery id, secret version, recipient, nonce, ciphertext or tag byte fails GCM', () => {
      const envelope = wrapToCertifiedKey(rsaPublic, payload, ADDRESS);
      const contentKey = rsaContentKey(parseEnvelope(envelope), rsa.privateKey);
      const ciphertextAt = envelope.length - 16 - payload.length;
      for (const offset of [at.deliveryId + 3, at.secretVersion + 3, AFTER_COMMON + 10, ciphertextAt - 5, ciphertextAt + 100, envelope.length - 1]) {
        const parsed = parseEnvelope(flip(envelope, offset));
        expect(() => openPayload(parsed, contentKey)).toThrow(EnvelopeAuthenticationError);
      }
      // Re-addressed to another delivery (a valid header, another id): the same.
      const readdressed = Buffer.from(envelope);
      readdressed.write('dlv-0002', at.deliveryId, 'latin1');
      expect(parseEnvelope(readdressed).deliveryId).toBe('dlv-0002');
      expect(() => openPayload(parseEnvelope(readdressed), contentKey)).toThrow(EnvelopeAuthenticationError);
      expect(() => openPayload(parseEnvelope(envelope), randomBytes(32))).toThrow(EnvelopeAuthenticationError);
    });

    it.each([
      ['a restricted key', { ...rsaPublic, objectAttributes: rsaPublic.objectAttributes | TPMA_OBJECT.restricted }, /unrestricted decryption key/],
      ['a signing key', { ...rsaPublic, objectAttributes: (rsaPublic.objectAttributes & ~TPMA_OBJECT.decrypt) | TPMA_OBJECT.sign }, /unrestricted decryption key/],
      ['an RSAES key', { ...rsaPublic, parameters: { ...rsaPublic.parameters, scheme: { scheme: TPM_ALG_ID.TPM_ALG_RSAES } } } as RsaPublic, /scheme TPM_ALG_RSAES/],
      ['a SHA-1 Name', { ...rsaPublic, nameAlg: TPM_ALG_ID.TPM_ALG_SHA1 }, /nameAlg/],
    ] as const)('wrapToCertifiedKey refuses %s', (_what, key, message) => {
      expect(() => wrapToCertifiedKey(key, payload, ADDRESS)).toThrow(RecipientKeyError);
      expect(() => wrapToCertifiedKey(key, payload, ADDRESS)).toThrow(message);
    });

    it('an address that cannot be written is refused before anything is encrypted', () => {
      expect(() => wrapToCertifiedKey(rsaPublic, payload, { deliveryId: '', secretVersion: 1 })).toThrow(EnvelopeFormatError);
      expect(() => wrapToCertifiedKey(rsaPublic, payload, { deliveryId: 'a b', secretVersion: 1 })).toThrow(EnvelopeFormatError);
      expect(() => wrapToCertifiedKey(rsaPublic, payload, { deliveryId: 'x', secretVersion: 0 })).toThrow(EnvelopeFormatError);
      expect(() => wrapToApprovedPcrPolicy({ ekPublic, group: 'a\nb', epoch: 1, signingKeyName }, payload, ADDRESS)).toThrow(EnvelopeFormatError);
    });
  });
});
