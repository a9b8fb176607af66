import { constants, createECDH, createHmac, generateKeyPairSync, privateDecrypt, randomBytes } from 'node:crypto';
import { CERTIFIED_DECRYPT_KEY_TEMPLATE, CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC, EK_TEMPLATE_RSA_L1, KDFe, tpmtPublicFromKey } from '@rackseal/tpm2';
import { deliveryAckProof } from './ack-proof';
import { CONTENT_KEY_LABEL, CONTENT_KEY_OAEP_LABEL, wrapDeliveryToCertifiedKey } from './certified-key-wrap';
import { openPayload } from './content-cipher';
import { type EcdhKeyTransport, type OaepKeyTransport, parseEnvelope } from './envelope-format';
import { wrapDeliveryToApprovedPcrPolicy } from './pcr-sealed-wrap';

const ADDRESS = { deliveryId: '0b4c8f2e-5a7d-4e21-9c3b-8f1e2d3c4b5a', secretVersion: 7 };

describe('libs/wrapping proof of unwrap', () => {
  const payload = randomBytes(500);

  it('is HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id), and differs per key and per delivery', () => {
    const key = randomBytes(32);
    const expected = createHmac('sha256', key).update(Buffer.from(`rackseal ack v1${ADDRESS.deliveryId}`, 'latin1')).digest();
    expect(deliveryAckProof(key, ADDRESS.deliveryId)).toEqual(expected);
    expect(deliveryAckProof(key, ADDRESS.deliveryId.replace(/a$/, 'b'))).not.toEqual(expected);
    expect(deliveryAckProof(randomBytes(32), ADDRESS.deliveryId)).not.toEqual(expected);
    expect(() => deliveryAckProof(randomBytes(16), ADDRESS.deliveryId)).toThrow(RangeError);
  });

  it('certified-key RSA: the proof handed back is the one the recipient computes from the key it decrypts', () => {
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const wrapped = wrapDeliveryToCertifiedKey(tpmtPublicFromKey(rsa.publicKey, CERTIFIED_DECRYPT_KEY_TEMPLATE), payload, ADDRESS);
    const parsed = parseEnvelope(wrapped.envelope);
    const t = parsed.transport as OaepKeyTransport;
    const contentKey = privateDecrypt({ key: rsa.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: CONTENT_KEY_OAEP_LABEL }, t.encryptedKey);
    expect(openPayload(parsed, contentKey)).toEqual(payload);
    expect(wrapped.ackProof).toEqual(deliveryAckProof(contentKey, ADDRESS.deliveryId));
    // Another wrap of the same payload has another content key, so another proof.
    expect(wrapDeliveryToCertifiedKey(tpmtPublicFromKey(rsa.publicKey, CERTIFIED_DECRYPT_KEY_TEMPLATE), payload, ADDRESS).ackProof).not.toEqual(wrapped.ackProof);
  });

  it('certified-key ECC: the same from the KDFe content key', () => {
    const ecc = createECDH('prime256v1');
    ecc.generateKeys();
    const pub = { ...CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC, unique: { x: ecc.getPublicKey().subarray(1, 33), y: ecc.getPublicKey().subarray(33) } };
    const wrapped = wrapDeliveryToCertifiedKey(pub, payload, ADDRESS);
    const parsed = parseEnvelope(wrapped.envelope);
    const t = parsed.transport as EcdhKeyTransport;
    const Z = ecc.computeSecret(Buffer.concat([Buffer.of(4), t.ephemeral.x, t.ephemeral.y]));
    const contentKey = KDFe(t.hashAlg, Z, CONTENT_KEY_LABEL, t.ephemeral.x, pub.unique.x, 256);
    expect(wrapped.ackProof).toEqual(deliveryAckProof(contentKey, ADDRESS.deliveryId));
  });

  it('pcr-sealed: the proof is of the content key drawn first (a recording source sees it)', () => {
    const ek = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const draws: Buffer[] = [];
    const random = (n: number) => {
      const b = randomBytes(n);
      draws.push(Buffer.from(b));
      return b;
    };
    const wrapped = wrapDeliveryToApprovedPcrPolicy(
      { ekPublic: tpmtPublicFromKey(ek.publicKey, EK_TEMPLATE_RSA_L1), group: 'workers', epoch: 2, signingKeyName: Buffer.concat([Buffer.from('000b', 'hex'), randomBytes(32)]) },
      payload,
      ADDRESS,
      { random },
    );
    const contentKey = draws[0]!;
    expect(openPayload(parseEnvelope(wrapped.envelope), contentKey)).toEqual(payload);
    expect(wrapped.ackProof).toEqual(deliveryAckProof(contentKey, ADDRESS.deliveryId));
    expect(wrapped.ackProof).not.toEqual(deliveryAckProof(contentKey, 'another-delivery'));
  });
});
