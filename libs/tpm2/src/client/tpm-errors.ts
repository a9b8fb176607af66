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
