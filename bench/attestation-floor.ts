import {
  createCipheriv,
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  createPublicKey,
  hkdfSync,
  type KeyObject,
  randomBytes,
  randomUUID,
  verify as cryptoVerify,
  X509Certificate,
} from 'node:crypto';
import { parsePcrSelection } from '@rackseal/tpm2';
import type { SoftwareTpm } from '../test/support/software-tpm';
import { measure, type Measurement } from './measure';

/**
 * The raw crypto floor of one attestation: only the node:crypto work the server cannot avoid for a
 * P-256 EK and AK, on the same inputs the load generator sends, with no parsing, no marshalling,
 * no HTTP and no database. Start: read the EK certificate, verify its signature and the issuing
 * CA's (the trust store's CA keys are imported once), hash its key (ekPubHash), the AK Name hash,
 * MakeCredential (ephemeral P-256 key, ECDH, KDFe, two KDFa HMACs, AES-128-CFB, the integrity HMAC),
 * the random nonce/secret/id, and the secret sealed (envelope: two AES-256-GCM). Finish: the secret
 * opened (two AES-256-GCM), the activation proof (HKDF + HMAC), the AK key imported, the quote's
 * ECDSA signature verified and the PCR values digested, the node credential derived (two HKDF) and
 * sealed (two AES-256-GCM).
 */
export async function attestationCryptoFloor(inputs: {
  readonly ekDer: Buffer;
  readonly issuingKey: KeyObject;
  readonly issuingDer: Buffer;
  readonly rootKey: KeyObject;
  readonly tpm: SoftwareTpm;
  readonly iterations: number;
}): Promise<{ start: FloorMeasurement; finish: FloorMeasurement }> {
  const { tpm } = inputs;
  const issuing = new X509Certificate(inputs.issuingDer);
  const ekPoint = Buffer.concat([Buffer.from([4]), tpm.ekPublic.unique.x, tpm.ekPublic.unique.y]);
  const akJwk = { kty: 'EC', crv: 'P-256', x: tpm.akPublic.unique.x.toString('base64url'), y: tpm.akPublic.unique.y.toString('base64url') };
  const nonce = randomBytes(32);
  const quote = tpm.quote(parsePcrSelection('sha256:0,1,2,3,4,5,6,7'), nonce);
  const quoteSig = Buffer.concat([quote.signature.subarray(6, 38), quote.signature.subarray(40, 72)]);
  const masterKey = randomBytes(32);
  const akPublicArea = tpm.akPublicBytes.subarray(2);

  const gcmSeal = (key: Buffer, data: Buffer): Buffer => {
    const c = createCipheriv('aes-256-gcm', key, randomBytes(12));
    const out = Buffer.concat([c.update(data), c.final()]);
    c.getAuthTag();
    return out;
  };
  const envelope = (data: Buffer) => {
    createHash('sha256').update(masterKey).digest(); // KEK ID
    const dek = randomBytes(32);
    const wrapped = gcmSeal(masterKey, dek);
    return { wrapped, data: gcmSeal(dek, data), dek };
  };
  const openGcm = (key: Buffer, data: Buffer): Buffer => {
    // Decryption without tag check costs the same AES-GCM pass; the floor does not need the tag to verify.
    const d = createDecipheriv('aes-256-gcm', key, Buffer.alloc(12));
    return d.update(data);
  };
  const sealed = envelope(randomBytes(32));

  const start = () => {
    const cert = new X509Certificate(inputs.ekDer);
    cert.verify(inputs.issuingKey);
    issuing.verify(inputs.rootKey);
    createHash('sha256').update(cert.publicKey.export({ type: 'spki', format: 'der' })).digest();
    createHash('sha256').update(akPublicArea).digest();
    randomUUID();
    randomBytes(32);
    const secret = randomBytes(32);
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const z = ecdh.computeSecret(ekPoint);
    const seed = createHash('sha256').update(z).digest();
    const symKey = createHmac('sha256', seed).update('STORAGE').digest().subarray(0, 16);
    const hmacKey = createHmac('sha256', seed).update('INTEGRITY').digest();
    const enc = createCipheriv('aes-128-cfb', symKey, Buffer.alloc(16)).update(secret);
    createHmac('sha256', hmacKey).update(enc).update(tpm.akName).digest();
    envelope(secret);
  };
  const finish = () => {
    const dek = openGcm(masterKey, sealed.wrapped);
    const secret = openGcm(dek.length === 32 ? dek : sealed.dek, sealed.data);
    const proofKey = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'proof', 32));
    createHmac('sha256', proofKey).update(nonce).digest();
    const akKey = createPublicKey({ key: akJwk, format: 'jwk' });
    if (!cryptoVerify('sha256', quote.attest, { key: akKey, dsaEncoding: 'ieee-p1363' }, quoteSig)) {
      throw new Error('the floor quote does not verify');
    }
    createHash('sha256').update(quote.pcrValues).digest();
    hkdfSync('sha256', secret, Buffer.alloc(0), 'key', 32);
    hkdfSync('sha256', secret, Buffer.alloc(0), 'id', 16);
    envelope(randomBytes(32));
  };
  for (let i = 0; i < 200; i += 1) {
    start();
    finish();
  }
  return { start: await cpuMeasure('floor start', start, inputs.iterations), finish: await cpuMeasure('floor finish', finish, inputs.iterations) };
}

/**
 * measure() plus the CPU time per iteration (process.cpuUsage over the timed loop): the server's
 * cost is read as CPU time from /proc, so the floor is compared as CPU time too — on a machine
 * shared with other work, wall time also counts the time the bench was not scheduled.
 */
async function cpuMeasure(name: string, operation: () => void, iterations: number): Promise<FloorMeasurement> {
  const before = process.cpuUsage();
  const wall = await measure(name, operation, { iterations, warmup: 0 });
  const used = process.cpuUsage(before);
  return { ...wall, cpuUs: (used.user + used.system) / iterations };
}

export type FloorMeasurement = Measurement & { readonly cpuUs: number };
