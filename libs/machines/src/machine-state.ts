/**
 * A machine's lifecycle (docs/architecture.md §3, §4.3, §4.8) as one state machine:
 *
 *   imported ──▶ attesting ──▶ attested
 *                    │  ▲          │
 *                    ▼  └──────────┘ (re-attestation)
 *               quarantined ──▶ attesting (a fixed machine attests again)
 *
 * and every state but `revoked` may go to `revoked`, which is final. A TPM that was replaced needs
 * its machine revoked and imported again (libs/inventory refuses a serial bound to another EK).
 */
import { MACHINE_STATES, type MachineState } from '@rackseal/api-contracts';

// The state names are part of the operator API (GET /v1/machines): declared in its contract.
export { MACHINE_STATES, type MachineState };

/** The legal transitions, from → the states it may go to. Anything else is a MachineTransitionError. */
export const MACHINE_TRANSITIONS: { readonly [From in MachineState]: readonly MachineState[] } = {
  // An imported machine starts its first attestation (a registration, §4.3).
  imported: ['attesting', 'revoked'],
  // An attestation ends attested or quarantined with its reason (§4.3).
  attesting: ['attested', 'quarantined', 'revoked'],
  // The daemon re-attests on a schedule (§4.8); drift found then quarantines through `attesting`.
  attested: ['attesting', 'revoked'],
  // A quarantined machine may attest again once its boot state is approved.
  quarantined: ['attesting', 'revoked'],
  revoked: [],
};

export function isMachineState(value: unknown): value is MachineState {
  return typeof value === 'string' && (MACHINE_STATES as readonly string[]).includes(value);
}

export function isLegalTransition(from: MachineState, to: MachineState): boolean {
  return MACHINE_TRANSITIONS[from].includes(to);
}
