/**
 * A TPM played in software with node:crypto keys, for load generators that need thousands of
 * machines (bench/attestation.bench.ts): an ECC P-256 EK (the TCG L-2 template, so its public area
 * is the one the server derives from the EK certificate), an ECC P-256 restricted signing AK, and a
 * SHA-256 PCR bank. It answers what the agent's TPM answers in the enrollment exchange:
 * TPM2_ActivateCredential (TPM 2.0 Part 1 §24, Part 3 §12.5) and TPM2_Quote (Part 3 §18.4), reusing
 * libs/tpm2's KDFs and structure codecs. test/software-tpm.test.ts proves it against libs/tpm2's
 * makeCredential and verifyQuote. Not a TPM: the private keys live in this process.
 */
import { createECDH, createHash, createDecipheriv, generateKeyPairSync, type KeyObject, sign, timingSafeEqual } from 'node:crypto';
import {
  AK_TEMPLATE_ECC,
  ekPublicFromKey,
  hashAlgorithm,
  hmac,
  KDFa,
  KDFe,
  marshalTpm2bPublic,
  marshalTpmsAttest,
  marshalTpmtSignature,
  objectName,
  parseExact,
  TPM_ALG_ID,
  TPM_GENERATED_VALUE,
  TPM_ST,
  type EccPublic,
  type TPML_PCR_SELECTION,
  tpmtPublicFromKey,
  unmarshalTpm2bEncryptedSecret,
  unmarshalTpm2bIdObject,
} from '@rackseal/tpm2';

/** What TPM2_ActivateCredential refuses with; `rc` is the response code a TPM would return. */
export class SoftwareActivationError extends Error {
  constructor(
    readonly rc: 'TPM_RC_INTEGRITY' | 'TPM_RC_ECC_POINT' | 'TPM_RC_SIZE',
    message: string,
  ) {
    super(`${rc}: ${message}`);
    this.name = 'SoftwareActivationError';
  }
}

/** A quote as the agent sends it: TPMS_ATTEST, TPMT_SIGNATURE and the PCR values in selection order. */
export interface SoftwareQuote {
  readonly attest: Buffer;
  readonly signature: Buffer;
  readonly pcrValues: Buffer;
}

const P256_BYTES = 32;

export class SoftwareTpm {
  readonly ekPublic: EccPublic;
  readonly akPublic: EccPublic;
  /** The AK's Name (Part 1 §16): what MakeCredential binds the credential to. */
  readonly akName: Buffer;
  /** TPM2B_PUBLIC of the AK, as the start request carries it. */
  readonly akPublicBytes: Buffer;
  /** SHA-256 bank, PCRs 0-23; all zero as after TPM2_Startup(CLEAR) on a platform that measured nothing. */
  readonly pcrs: Buffer[] = Array.from({ length: 24 }, () => Buffer.alloc(32));
  private readonly ekEcdh = createECDH('prime256v1');
  private resetCount = 0;
  private clock = 1000n;

  constructor(
    readonly ek: { readonly privateKey: KeyObject; readonly publicKey: KeyObject } = generateKeyPairSync('ec', { namedCurve: 'P-256' }),
    private readonly ak: { readonly privateKey: KeyObject; readonly publicKey: KeyObject } = generateKeyPairSync('ec', { namedCurve: 'P-256' }),
  ) {
    const ekPublic = ekPublicFromKey(ek.publicKey);
    if (ekPublic.type !== TPM_ALG_ID.TPM_ALG_ECC) {
      throw new Error('the software TPM has an ECC EK only');
    }
    this.ekPublic = ekPublic;
    this.ekEcdh.setPrivateKey(Buffer.from(ek.privateKey.export({ format: 'jwk' }).d!, 'base64url'));
    this.akPublic = tpmtPublicFromKey(ak.publicKey, AK_TEMPLATE_ECC);
    this.akName = objectName(this.akPublic);
    this.akPublicBytes = marshalTpm2bPublic(this.akPublic);
  }

  /**
   * TPM2_ActivateCredential with the EK as keyHandle and the AK as activateHandle (Part 3 §12.5,
   * Part 1 §24): recovers the seed by ECDH (Part 1 Annex C.6.1, KDFe with label "IDENTITY"), checks
   * the integrity HMAC over encIdentity ‖ AK Name (§24.5), then decrypts the TPM2B_DIGEST with
   * AES-CFB under KDFa(seed, "STORAGE", AK Name) (§24.4). Answers the credential.
   */
  activateCredential(credentialBlob: Buffer, encryptedSecret: Buffer): Buffer {
    const nameAlg = this.ekPublic.nameAlg;
    const digestBits = 8 * hashAlgorithm(nameAlg).size;
    const keyBits = this.ekPublic.parameters.symmetric.keyBits!;
    // TPMU_ENCRYPTED_SECRET for ECC is a TPMS_ECC_POINT (Part 2 §11.4.33, §11.2.5.2): x ‖ y, each a TPM2B.
    const point = parseExact(unmarshalTpm2bEncryptedSecret(encryptedSecret), 'TPMS_ECC_POINT', (r) => ({ x: r.tpm2b('x', P256_BYTES), y: r.tpm2b('y', P256_BYTES) }));
    if (point.x.length !== P256_BYTES || point.y.length !== P256_BYTES) {
      throw new SoftwareActivationError('TPM_RC_ECC_POINT', 'the ephemeral point is not a full-length P-256 point');
    }
    let Z: Buffer;
    try {
      Z = this.ekEcdh.computeSecret(Buffer.concat([Buffer.from([0x04]), point.x, point.y]));
    } catch {
      throw new SoftwareActivationError('TPM_RC_ECC_POINT', 'the ephemeral point is not on P-256');
    }
    const seed = KDFe(nameAlg, Z, 'IDENTITY', point.x, this.ekPublic.unique.x, digestBits);
    const { integrityHMAC, encIdentity } = unmarshalTpm2bIdObject(credentialBlob);
    const hmacKey = KDFa(nameAlg, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), digestBits);
    const expected = hmac(nameAlg, hmacKey, encIdentity, this.akName);
    if (integrityHMAC.length !== expected.length || !timingSafeEqual(integrityHMAC, expected)) {
      throw new SoftwareActivationError('TPM_RC_INTEGRITY', 'the credential blob was not made for this EK and AK');
    }
    const symKey = KDFa(nameAlg, seed, 'STORAGE', this.akName, Buffer.alloc(0), keyBits);
    const decipher = createDecipheriv(`aes-${keyBits}-cfb`, symKey, Buffer.alloc(16));
    const plain = Buffer.concat([decipher.update(encIdentity), decipher.final()]);
    // The credential is a TPM2B_DIGEST: at most the nameAlg's digest size (Part 3 §12.5: TPM_RC_SIZE).
    const size = plain.length >= 2 ? plain.readUInt16BE(0) : -1;
    if (size < 0 || size > hashAlgorithm(nameAlg).size || plain.length !== 2 + size) {
      throw new SoftwareActivationError('TPM_RC_SIZE', 'the decrypted credential is not a TPM2B_DIGEST');
    }
    return plain.subarray(2);
  }

  /** PCR_Extend of the SHA-256 bank (Part 1 §17.2): new = H(old ‖ digest). */
  extend(pcr: number, digest: Buffer): void {
    this.pcrs[pcr] = createHash('sha256').update(this.pcrs[pcr]!).update(digest).digest();
  }

  /**
   * TPM2_Quote by the AK over `nonce` (Part 3 §18.4): a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE whose
   * pcrDigest is H(selected PCR values in selection order) (Part 2 §10.12.1), signed ECDSA-SHA256.
   * SHA-256 banks only.
   */
  quote(selection: TPML_PCR_SELECTION, nonce: Buffer): SoftwareQuote {
    const values: Buffer[] = [];
    for (const bank of selection) {
      if (bank.hash !== TPM_ALG_ID.TPM_ALG_SHA256) {
        throw new Error('the software TPM has a SHA-256 PCR bank only');
      }
      bank.pcrs.forEach((pcr) => values.push(this.pcrs[pcr]!));
    }
    const pcrDigest = createHash('sha256');
    values.forEach((v) => pcrDigest.update(v));
    this.clock += 1n;
    const attest = marshalTpmsAttest({
      magic: TPM_GENERATED_VALUE,
      type: TPM_ST.TPM_ST_ATTEST_QUOTE,
      qualifiedSigner: this.akName,
      extraData: nonce,
      clockInfo: { clock: this.clock, resetCount: this.resetCount, restartCount: 0, safe: true },
      firmwareVersion: 0n,
      attested: { pcrSelect: selection, pcrDigest: pcrDigest.digest() },
    });
    const rs = sign('sha256', attest, { key: this.ak.privateKey, dsaEncoding: 'ieee-p1363' });
    const signature = marshalTpmtSignature({
      sigAlg: TPM_ALG_ID.TPM_ALG_ECDSA,
      signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, signatureR: rs.subarray(0, P256_BYTES), signatureS: rs.subarray(P256_BYTES) },
    });
    return { attest, signature, pcrValues: Buffer.concat(values) };
  }

  /** TPM2_Startup(CLEAR) after a reboot: PCRs back to zero, a new resetCount. */
  reboot(): void {
    this.pcrs.forEach((v) => v.fill(0));
    this.resetCount += 1;
  }
}
