import { type ApprovalsResponse } from '@rackseal/node-api-contracts';
import { approvalDigest, approvalPolicyRef, approvedPcrPolicy } from '@rackseal/pcr-policy';
import {
  CERTIFIED_DECRYPT_KEY_TEMPLATE,
  CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC,
  createAttestationKey,
  createCertifiedDecryptKey,
  ekPubHash,
  getEndorsementKey,
  type KeyBlob,
  marshalTpm2bPublic,
  marshalTpmtSignature,
  objectName,
  parsePcrSelection,
  pcrRead,
  type RsaPublic,
  TPM_ALG_ID,
  TPMA_OBJECT,
  type TpmClient,
  tpmtPublicFromKey,
  type TPMT_PUBLIC,
  withTpmScope,
} from '@rackseal/tpm2';
import { constants, generateKeyPairSync, type KeyObject, privateEncrypt, randomBytes } from 'node:crypto';

/**
 * Test helpers for wrapping and unwrapping (test/wrapping-*.test.ts): a machine's TPM provisioned
 * as the agent leaves it (EK, certified RSA and ECC decrypt keys as key blobs) and a PCR-approval
 * signer standing in for the control plane's (issue 13 item 5), which signs aHash =
 * approvalDigest(approvedPolicy, policyRef) with RSASSA-PKCS1-v1_5 SHA-256.
 */

/** What the control plane knows of a machine, and what the agent keeps in its state dir. */
export interface ProvisionedMachine {
  readonly ekPublic: TPMT_PUBLIC;
  readonly ekPubHash: string;
  readonly rsaKey: KeyBlob;
  readonly eccKey: KeyBlob;
}

/** Certifies an RSA-2048 and a P-256 decrypt key under the storage primary (the agent's enrollment step), everything flushed. */
export async function provisionMachine(client: TpmClient): Promise<ProvisionedMachine> {
  return withTpmScope(client, async (scope) => {
    const ek = await getEndorsementKey(scope, 'rsa-2048');
    const ak = await createAttestationKey(scope, ek);
    const rsa = await createCertifiedDecryptKey(scope, ak, randomBytes(32), { keyTemplate: CERTIFIED_DECRYPT_KEY_TEMPLATE });
    await scope.flush(rsa.handle);
    const ecc = await createCertifiedDecryptKey(scope, ak, randomBytes(32), { keyTemplate: CERTIFIED_DECRYPT_KEY_TEMPLATE_ECC });
    await scope.flush(ecc.handle);
    return { ekPublic: ek.public, ekPubHash: ekPubHash(ek.public), rsaKey: rsa.blob, eccKey: ecc.blob };
  });
}

/** RFC 8017 §9.2 note 1: the DER DigestInfo prefix of a SHA-256 digest. */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

export const APPROVAL_BANK = 'sha256';
export const APPROVAL_PCRS = [0, 7] as const;
export const APPROVAL_SELECTION = parsePcrSelection('sha256:0,7');

/** A PCR-approval signing key as the control plane's: RSA-2048, sign, RSASSA-SHA256, loaded with LoadExternal. */
export class ApprovalSigner {
  readonly public: RsaPublic;
  readonly name: Buffer;
  private readonly privateKey: KeyObject;

  constructor() {
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    this.privateKey = privateKey;
    this.public = tpmtPublicFromKey(publicKey, {
      type: TPM_ALG_ID.TPM_ALG_RSA,
      nameAlg: TPM_ALG_ID.TPM_ALG_SHA256,
      objectAttributes: TPMA_OBJECT.sign | TPMA_OBJECT.userWithAuth,
      authPolicy: Buffer.alloc(0),
      parameters: { symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_NULL }, scheme: { scheme: TPM_ALG_ID.TPM_ALG_RSASSA, hashAlg: TPM_ALG_ID.TPM_ALG_SHA256 }, keyBits: 2048, exponent: 0 },
      unique: Buffer.alloc(0),
    });
    this.name = objectName(this.public);
  }

  /** TPMT_SIGNATURE (RSASSA, SHA-256) over aHash, the digest itself PKCS#1 v1.5 signed. */
  signDigest(aHash: Buffer): Buffer {
    const sig = privateEncrypt({ key: this.privateKey, padding: constants.RSA_PKCS1_PADDING }, Buffer.concat([SHA256_DIGEST_INFO, aHash]));
    return marshalTpmtSignature({ sigAlg: TPM_ALG_ID.TPM_ALG_RSASSA, signature: { hash: TPM_ALG_ID.TPM_ALG_SHA256, sig } });
  }

  /** GET /node/v1/approvals' answer for `group` at `epoch`, one approval per PCR value set (PCR 0 and 7, hex by index). */
  approvals(group: string, epoch: number, sets: readonly Record<number, string>[]): ApprovalsResponse {
    const policyRef = approvalPolicyRef(group, epoch);
    const policy = { bank: APPROVAL_BANK, pcrs: [...APPROVAL_PCRS] };
    return {
      group,
      epoch,
      policyRef: policyRef.toString('hex'),
      bank: APPROVAL_BANK,
      pcrs: [...APPROVAL_PCRS],
      signingKeyPublic: marshalTpm2bPublic(this.public).toString('base64'),
      signingKeyName: this.name.toString('hex'),
      approvals: sets.map((values, i) => {
        const approvedPolicy = approvedPcrPolicy(policy, { values });
        return { label: `set-${i}`, approvedPolicy: approvedPolicy.toString('hex'), signature: this.signDigest(approvalDigest(approvedPolicy, policyRef)).toString('base64') };
      }),
    };
  }
}

/** The TPM's PCR 0 and 7 now, as an allowed set's values. */
export async function currentPcrSet(client: TpmClient): Promise<Record<number, string>> {
  const { values } = await pcrRead(client, APPROVAL_SELECTION);
  return Object.fromEntries(APPROVAL_PCRS.map((pcr, i) => [pcr, values[i]!.toString('hex')]));
}
