import { decodeResponseCode, type DecodedResponseCode, type RcPosition } from './response-codes';

function describePosition(position: RcPosition | undefined): string {
  return position === undefined ? '' : ` on ${position.kind} ${position.index}`;
}

/**
 * The TPM refused a command: which command, which response code (named as in Part 2), and which
 * handle, session or parameter the TPM blames.
 */
export class TpmError extends Error {
  readonly rc: DecodedResponseCode;

  constructor(
    readonly command: string,
    readonly responseCode: number,
  ) {
    const rc = decodeResponseCode(responseCode);
    super(`${command} failed: ${rc.name} (0x${responseCode.toString(16)})${describePosition(rc.position)}: ${rc.description}`);
    this.name = 'TpmError';
    this.rc = rc;
  }

  /** e.g. `err.is('TPM_RC_POLICY_FAIL')`, whatever the position bits. */
  is(name: string): boolean {
    return this.rc.name === name;
  }
}

export type TransportProblem = 'not-found' | 'permission' | 'busy' | 'timeout' | 'closed' | 'io' | 'protocol';

/** The TPM could not be reached or answered with something that is not a TPM response. */
export class TpmTransportError extends Error {
  constructor(
    readonly device: string,
    readonly problem: TransportProblem,
    message: string,
  ) {
    super(`${device}: ${message}`);
    this.name = 'TpmTransportError';
  }
}

/**
 * A response that fails its session's integrity check (Part 1 §19.6: the response HMAC over rpHash
 * and the nonces): something between this process and the TPM altered, replayed or forged it. The
 * parameters are discarded unread; the session is unusable afterwards and is flushed by its scope.
 */
export class TpmResponseIntegrityError extends Error {
  constructor(
    readonly command: string,
    /** Index of the session in the authorization area whose check failed. */
    readonly session: number,
    reason: string,
  ) {
    super(`${command}: the response fails the integrity check of session ${session} (${reason}); the bus between this host and the TPM is not to be trusted`);
    this.name = 'TpmResponseIntegrityError';
  }
}

/** An HMAC session that the TPM closed, or whose state is unknown after a refused response, was used again. */
export class SessionClosedError extends Error {
  constructor(readonly sessionHandle: number) {
    super(`session 0x${sessionHandle.toString(16)} is closed and cannot authorize another command`);
    this.name = 'SessionClosedError';
  }
}

/**
 * A command whose sessions the client cannot compute: a handle without a known Name for cpHash, two
 * sessions asking to decrypt (or encrypt), or a first parameter that is not a TPM2B. A programming
 * error of the caller, found before anything is sent.
 */
export class SessionUsageError extends Error {
  constructor(
    readonly command: string,
    reason: string,
  ) {
    super(`${command}: ${reason}`);
    this.name = 'SessionUsageError';
  }
}
