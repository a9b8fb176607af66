import { randomBytes } from 'node:crypto';
import { marshal } from '../codec/tpm-writer';
import { TPM_ALG_ID, TPM_CC, TPM_RH } from '../constants';
import { hashAlgorithm } from '../hash-algorithms';
import { writePcrSelection, type TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import type { TPMS_AUTH_COMMAND } from '../client/session-auth';
import type { TpmClient } from '../client/tpm-client';
import { readTicket, type TPMT_TK, writeTicket } from './tickets';
import { tpm2FlushContext } from './context-management';

/**
 * Session commands: TPM2_StartAuthSession (Part 3 §11.1) for unsalted, unbound policy and trial
 * sessions, and the policy commands of Part 3 §23 that rackseal's objects use. The policy digest
 * each one produces is computed offline by policy/policy-digest.ts; PolicyGetDigest compares.
 */

/** Part 2 §6.11 TPM_SE: the kind of session StartAuthSession opens. */
export const TPM_SE = {
  TPM_SE_HMAC: 0x00,
  TPM_SE_POLICY: 0x01,
  /** Accumulates a policy digest without enforcing anything: how a policy is computed on a TPM. */
  TPM_SE_TRIAL: 0x03,
} as const;

export type TPM_SE = (typeof TPM_SE)[keyof typeof TPM_SE];

const MAX_DIGEST = 64;
/** Part 2 §10.4.2: a TPM2B_NONCE holds at most a digest; Part 3 §11.1 wants at least 16 bytes. */
const MIN_NONCE_CALLER = 16;

export interface AuthSession {
  readonly sessionHandle: number;
  readonly nonceTPM: Buffer;
  /** The session's hash (authHash): policy digests in this session are of this algorithm. */
  readonly authHash: number;
}

/**
 * TPM2_StartAuthSession with tpmKey = bind = TPM_RH_NULL (unsalted, unbound), no parameter
 * encryption (symmetric TPM_ALG_NULL). Such a session's HMAC may be empty (Part 1 §19.6.11), which
 * is what policyAuth() sends. nonceCaller defaults to authHash-size random bytes.
 */
export async function tpm2StartAuthSession(
  client: TpmClient,
  sessionType: TPM_SE,
  authHash: number = TPM_ALG_ID.TPM_ALG_SHA256,
  nonceCaller: Buffer = randomBytes(hashAlgorithm(authHash).size),
): Promise<AuthSession> {
  if (nonceCaller.length < MIN_NONCE_CALLER || nonceCaller.length > hashAlgorithm(authHash).size) {
    // The TPM would answer TPM_RC_SIZE on parameter 1; say why before sending.
    throw new RangeError(`nonceCaller must be ${MIN_NONCE_CALLER} to ${hashAlgorithm(authHash).size} bytes, got ${nonceCaller.length}`);
  }
  const response = await client.execute({
    code: TPM_CC.TPM_CC_StartAuthSession,
    handles: [TPM_RH.TPM_RH_NULL, TPM_RH.TPM_RH_NULL],
    parameters: marshal((w) =>
      w.tpm2b(nonceCaller).tpm2b(Buffer.alloc(0)).u8(sessionType).u16(TPM_ALG_ID.TPM_ALG_NULL).u16(authHash),
    ),
    responseHandles: 1,
  });
  const sessionHandle = response.handles[0]!;
  try {
    const r = response.parameters;
    const nonceTPM = r.tpm2b('nonceTPM', MAX_DIGEST);
    r.end();
    return { sessionHandle, nonceTPM, authHash };
  } catch (error) {
    // Never leave a session behind, even when its answer does not parse.
    await tpm2FlushContext(client, sessionHandle).catch(() => undefined);
    throw error;
  }
}

export interface PolicySecretOptions {
  /** Binds the authorization to this session's nonce; empty: not bound (and no expiration needed). */
  readonly nonceTPM?: Buffer;
  readonly cpHashA?: Buffer;
  readonly policyRef?: Buffer;
  /** INT32 seconds; 0 = no time limit, which is why no ticket comes back. */
  readonly expiration?: number;
}

export interface PolicySecretResult {
  readonly timeout: Buffer;
  readonly policyTicket: TPMT_TK;
}

/**
 * TPM2_PolicySecret (Part 3 §23.4): proves knowledge of `authHandle`'s authorization (for the EK
 * policy, TPM_RH_ENDORSEMENT with its empty password) and extends the policy with its Name.
 */
export async function tpm2PolicySecret(
  client: TpmClient,
  authHandle: number,
  authHandleAuth: TPMS_AUTH_COMMAND,
  policySession: number,
  options: PolicySecretOptions = {},
): Promise<PolicySecretResult> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_PolicySecret,
    handles: [authHandle, policySession],
    sessions: [authHandleAuth],
    parameters: marshal((w) =>
      w
        .tpm2b(options.nonceTPM ?? Buffer.alloc(0))
        .tpm2b(options.cpHashA ?? Buffer.alloc(0))
        .tpm2b(options.policyRef ?? Buffer.alloc(0))
        .u32((options.expiration ?? 0) >>> 0),
    ),
  });
  const r = response.parameters;
  const timeout = r.tpm2b('timeout', 8);
  const policyTicket = readTicket(r, 'policyTicket');
  r.end();
  return { timeout, policyTicket };
}

/**
 * TPM2_PolicyPCR (Part 3 §23.7). With an empty pcrDigest the TPM uses its current values of `pcrs`,
 * so the policy only matches the object's authPolicy when they are the values it was sealed to.
 * `pcrs` must be marshalled exactly as at sealing (same banks, order and sizeofSelect).
 */
export async function tpm2PolicyPCR(client: TpmClient, policySession: number, pcrs: TPML_PCR_SELECTION, pcrDigest: Buffer = Buffer.alloc(0)): Promise<void> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_PolicyPCR,
    handles: [policySession],
    parameters: marshal((w) => {
      w.tpm2b(pcrDigest);
      writePcrSelection(w, pcrs);
    }),
  });
  response.parameters.end();
}

export interface PolicyAuthorizeInput {
  /** The policy the signer approved; must equal the session's current digest (policy sessions). */
  readonly approvedPolicy: Buffer;
  readonly policyRef: Buffer;
  /** Name of the key that signed H(approvedPolicy ‖ policyRef). */
  readonly keySign: Buffer;
  /** From TPM2_VerifySignature of that signature; a trial session accepts a NULL ticket. */
  readonly checkTicket: TPMT_TK;
}

/**
 * TPM2_PolicyAuthorize (Part 3 §23.16): replaces the session digest by one that depends only on
 * keySign and policyRef, so an object sealed to it accepts any policy that key signs.
 */
export async function tpm2PolicyAuthorize(client: TpmClient, policySession: number, input: PolicyAuthorizeInput): Promise<void> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_PolicyAuthorize,
    handles: [policySession],
    parameters: marshal((w) => {
      w.tpm2b(input.approvedPolicy).tpm2b(input.policyRef).tpm2b(input.keySign);
      writeTicket(w, input.checkTicket);
    }),
  });
  response.parameters.end();
}

/**
 * TPM2_PolicyOR (Part 3 §23.6): the session digest must be one of `pHashList` (2 to 8 digests), and
 * becomes H(0…0 ‖ TPM_CC_PolicyOR ‖ pHashList).
 */
export async function tpm2PolicyOR(client: TpmClient, policySession: number, pHashList: readonly Buffer[]): Promise<void> {
  const response = await client.execute({
    code: TPM_CC.TPM_CC_PolicyOR,
    handles: [policySession],
    parameters: marshal((w) => {
      w.u32(pHashList.length);
      for (const digest of pHashList) {
        w.tpm2b(digest);
      }
    }),
  });
  response.parameters.end();
}

/** TPM2_PolicyGetDigest (Part 3 §23.19): the session's current policy digest. */
export async function tpm2PolicyGetDigest(client: TpmClient, policySession: number): Promise<Buffer> {
  const response = await client.execute({ code: TPM_CC.TPM_CC_PolicyGetDigest, handles: [policySession] });
  const r = response.parameters;
  const policyDigest = r.tpm2b('policyDigest', MAX_DIGEST);
  r.end();
  return policyDigest;
}
