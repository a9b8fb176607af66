import type { MachineState } from './machine-state';

/** `from → to` is not an edge of the machine state machine (machine-state.ts). */
export class MachineTransitionError extends Error {
  constructor(
    readonly from: MachineState,
    readonly to: MachineState,
  ) {
    super(`a machine cannot go from ${from} to ${to}`);
    this.name = 'MachineTransitionError';
  }
}

/**
 * The machine was not in the state the transition expected when it was applied: someone else (another
 * worker, another replica) moved it first. Nothing was written.
 */
export class MachineStateConflictError extends Error {
  constructor(
    readonly machineId: string,
    readonly expected: MachineState,
    readonly actual: MachineState,
    readonly to: MachineState,
  ) {
    super(`machine ${machineId} is ${actual}, not ${expected}: it was not moved to ${to}`);
    this.name = 'MachineStateConflictError';
  }
}

export class MachineNotFoundError extends Error {
  constructor(readonly machineId: string) {
    super(`no machine ${machineId}`);
    this.name = 'MachineNotFoundError';
  }
}

/** A transition reason is required (it is the history an operator reads) and bounded. */
export class MachineTransitionReasonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MachineTransitionReasonError';
  }
}
