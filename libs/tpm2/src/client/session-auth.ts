import { TPM_RH } from '../constants';

/** Part 2 §8.4 TPMA_SESSION bits. */
export const TPMA_SESSION = {
  continueSession: 0x01,
  auditExclusive: 0x02,
  auditReset: 0x04,
  decrypt: 0x20,
  encrypt: 0x40,
  audit: 0x80,
} as const;

/**
 * Part 2 §10.13.2 TPMS_AUTH_COMMAND: one entry of a command's authorization area. rackseal uses
 * two kinds: the password session (TPM_RS_PW, hmac = the password) and policy sessions that are
 * unsalted and unbound, whose HMAC may be empty (Part 1 §19.6.11).
 */
export interface TPMS_AUTH_COMMAND {
  readonly sessionHandle: number;
  readonly nonce: Buffer;
  readonly sessionAttributes: number;
  readonly hmac: Buffer;
}

/** Part 2 §10.13.3 TPMS_AUTH_RESPONSE. */
export interface TPMS_AUTH_RESPONSE {
  readonly nonce: Buffer;
  readonly sessionAttributes: number;
  readonly hmac: Buffer;
}

/** The password session, with an empty password unless given (EK, SRK and NV reads use it). */
export function passwordAuth(password: Buffer = Buffer.alloc(0)): TPMS_AUTH_COMMAND {
  return { sessionHandle: TPM_RH.TPM_RS_PW, nonce: Buffer.alloc(0), sessionAttributes: 0, hmac: password };
}

/**
 * Use of a policy session. continueSession is clear so the TPM flushes the session after the
 * command, leaving nothing behind on a TPM without a resource manager (swtpm).
 */
export function policyAuth(sessionHandle: number, continueSession = false): TPMS_AUTH_COMMAND {
  return {
    sessionHandle,
    nonce: Buffer.alloc(0),
    sessionAttributes: continueSession ? TPMA_SESSION.continueSession : 0,
    hmac: Buffer.alloc(0),
  };
}
