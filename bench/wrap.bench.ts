import { constants, createCipheriv, createECDH, createHash, createHmac, generateKeyPairSync, publicEncrypt, randomBytes } from 'node:crypto';
import {
  CERTIFIED_DECRYPT_KEY_TEMPLATE,
  CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC,
  EK_TEMPLATE_RSA_L1,
  marshalTpm2bPublic,
  publicKeyFromTpmt,
  tpmtPublicFromKey,
  type TPMT_PUBLIC,
  unmarshalTpm2bPublic,
} from '@rackseal/tpm2';
import { CONTENT_KEY_OAEP_LABEL, wrapToApprovedPcrPolicy, wrapToCertifiedKey } from '@rackseal/wrapping';
import { formatTable, measure, type Measurement, us } from './measure';

const ITERATIONS = 3000;
/** A TLS key with its chain, or a kubelet credential: a few KiB. */
const PAYLOAD = randomBytes(4096);
const ADDRESS = { deliveryId: 'bench-delivery-0001', secretVersion: 1 };

function gcm(key: Buffer, aad: Buffer, data: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, randomBytes(12));
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(data), cipher.final(), cipher.getAuthTag()]);
}

/**
 * Issue 13 item 5: envelopes per second for each binding (libs/wrapping, the control plane's side
 * of a delivery) against the raw crypto floor in the same run — the same primitives called
 * directly with node:crypto, no envelope format, no checks:
 * - certified-key RSA: RSA-OAEP-SHA256 of 32 bytes + AES-256-GCM of the payload;
 * - certified-key ECC: ephemeral P-256 key + ECDH + one SHA-256 (KDFe) + AES-256-GCM;
 * - pcr-sealed: RSA-OAEP of the 32-byte seed to the EK + the outer wrap (KDFa: 2 HMACs, the
 *   sealed object's unique and Name: 2 SHA-256, AES-128-CFB of the sensitive area, its HMAC) +
 *   AES-256-GCM.
 */
export async function wrapBench(): Promise<string> {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  // As the control plane holds them: TPM2B_PUBLIC bytes (from the key certification, the EK), parsed.
  const parsed = <T extends TPMT_PUBLIC>(pub: T) => unmarshalTpm2bPublic(marshalTpm2bPublic(pub));
  const rsaPublic = parsed(tpmtPublicFromKey(rsa.publicKey, CERTIFIED_DECRYPT_KEY_TEMPLATE));
  const ecc = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const eccPublic = parsed(tpmtPublicFromKey(ecc.publicKey, CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC));
  const ek = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ekPublic = parsed(tpmtPublicFromKey(ek.publicKey, EK_TEMPLATE_RSA_L1));
  const rsaKey = publicKeyFromTpmt(rsaPublic);
  const ekKey = publicKeyFromTpmt(ekPublic);
  const jwk = ecc.publicKey.export({ format: 'jwk' });
  const eccPoint = Buffer.concat([Buffer.of(4), Buffer.from(jwk.x!, 'base64url'), Buffer.from(jwk.y!, 'base64url')]);
  const signingKeyName = Buffer.concat([Buffer.from('000b', 'hex'), randomBytes(32)]);
  const header = randomBytes(400);

  const pairs: [Measurement, Measurement][] = [];
  pairs.push([
    await measure('certified-key RSA-2048: wrapToCertifiedKey', () => wrapToCertifiedKey(rsaPublic, PAYLOAD, ADDRESS), { iterations: ITERATIONS }),
    await measure('floor: RSA-OAEP-SHA256 + AES-256-GCM', () => {
      const key = randomBytes(32);
      publicEncrypt({ key: rsaKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: CONTENT_KEY_OAEP_LABEL }, key);
      gcm(key, header, PAYLOAD);
    }, { iterations: ITERATIONS }),
  ]);
  pairs.push([
    await measure('certified-key P-256: wrapToCertifiedKey', () => wrapToCertifiedKey(eccPublic, PAYLOAD, ADDRESS), { iterations: ITERATIONS }),
    await measure('floor: P-256 ECDH + SHA-256 + AES-256-GCM', () => {
      const e = createECDH('prime256v1');
      e.generateKeys();
      const z = e.computeSecret(eccPoint);
      const key = createHash('sha256').update(Buffer.alloc(4)).update(z).update(e.getPublicKey()).digest();
      gcm(key, header, PAYLOAD);
    }, { iterations: ITERATIONS }),
  ]);
  pairs.push([
    await measure('pcr-sealed (RSA-2048 EK): wrapToApprovedPcrPolicy', () => wrapToApprovedPcrPolicy({ ekPublic, group: 'workers', epoch: 1, signingKeyName }, PAYLOAD, ADDRESS), { iterations: ITERATIONS }),
    await measure('floor: RSA-OAEP seed + outer wrap + AES-256-GCM', () => {
      const seed = randomBytes(32);
      publicEncrypt({ key: ekKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from('DUPLICATE\0') }, seed);
      const contentKey = randomBytes(32);
      const name = createHash('sha256').update(createHash('sha256').update(seed).update(contentKey).digest()).digest();
      const symKey = createHmac('sha256', seed).update(name).digest().subarray(0, 16);
      const hmacKey = createHmac('sha256', seed).update(name).digest();
      const cipher = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
      const encrypted = Buffer.concat([cipher.update(Buffer.concat([randomBytes(36), contentKey, randomBytes(10)])), cipher.final()]);
      createHmac('sha256', hmacKey).update(encrypted).update(name).digest();
      gcm(contentKey, header, PAYLOAD);
    }, { iterations: ITERATIONS }),
  ]);
  return [
    `${ITERATIONS} wraps each of a ${PAYLOAD.length}-byte payload after a warm-up; the floor is the same primitives with node:crypto, in the same run.`,
    '',
    formatTable([
      ['operation', 'mean', 'p99', 'wraps per second', 'floor per second', 'ratio to floor'],
      ...pairs.map(([m, floor]) => [m.name, us(m.meanUs), us(m.p99Us), m.opsPerSecond.toFixed(0), floor.opsPerSecond.toFixed(0), `${(m.meanUs / floor.meanUs).toFixed(2)}×`]),
    ]),
  ].join('\n');
}
