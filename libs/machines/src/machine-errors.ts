import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';
import type { MachineState } from './machine-state';

/** Every code this library throws, with its kind (the README lists them with their HTTP status). */
export const MACHINE_ERROR_CODES = {
  'machine.not-found': 'not-found',
  'machine.illegal-transition': 'conflict',
  'machine.state-conflict': 'conflict',
  'machine.invalid-reason': 'invalid',
  'machine.invalid-ref': 'invalid',
  'machine.invalid-failure': 'invalid',
  'machine.invalid-group': 'invalid',
  'machine.invalid-interval': 'invalid',
} as const satisfies ErrorCodeTable;
export type MachineErrorCode = keyof typeof MACHINE_ERROR_CODES;

/** A refusal of this library, carrying one of MACHINE_ERROR_CODES. */
export class MachineError extends domainErrorFor(MACHINE_ERROR_CODES) {}

/** `from → to` is not an edge of the machine state machine (machine-state.ts). */
export class MachineTransitionError extends MachineError {
  constructor(
    readonly from: MachineState,
    readonly to: MachineState,
  ) {
    super('machine.illegal-transition', `a machine cannot go from ${from} to ${to}`);
    this.name = 'MachineTransitionError';
  }
}

/**
 * The machine was not in the state the transition expected when it was applied: someone else (another
 * worker, another replica) moved it first. Nothing was written.
 */
export class MachineStateConflictError extends MachineError {
  constructor(
    readonly machineId: string,
    readonly expected: MachineState,
    readonly actual: MachineState,
    readonly to: MachineState,
  ) {
    super('machine.state-conflict', `machine ${machineId} is ${actual}, not ${expected}: it was not moved to ${to}`);
    this.name = 'MachineStateConflictError';
  }
}

export class MachineNotFoundError extends MachineError {
  constructor(readonly machineId: string) {
    super('machine.not-found', `no machine ${machineId}`);
    this.name = 'MachineNotFoundError';
  }
}

/** A transition reason is required (it is the history an operator reads) and bounded. */
export class MachineTransitionReasonError extends MachineError {
  constructor(message: string) {
    super('machine.invalid-reason', message);
    this.name = 'MachineTransitionReasonError';
  }
}

/** Neither a machine id (UUID) nor a serial (1-128 printable characters). */
export class MachineRefError extends MachineError {
  constructor(readonly ref: string) {
    // JSON.stringify escapes control characters: the message is safe to print.
    super('machine.invalid-ref', `${JSON.stringify(ref.slice(0, 130))} is neither a machine id (UUID) nor a serial (1-128 letters, digits and . _ : / # -, starting with a letter or digit)`);
    this.name = 'MachineRefError';
  }
}

/** A failure record the verifier built wrong (no error code, an invalid time or registration id): nothing was written. */
export class MachineFailureRecordError extends MachineError {
  constructor(message: string) {
    super('machine.invalid-failure', message);
    this.name = 'MachineFailureRecordError';
  }
}

/** A group's attestation interval refused: not a group name, or an interval outside 10 s – 31 days. Nothing was written. */
export class GroupIntervalError extends MachineError {
  constructor(code: 'machine.invalid-group' | 'machine.invalid-interval', message: string) {
    super(code, message);
    this.name = 'GroupIntervalError';
  }
}
