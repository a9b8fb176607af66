/**
 * The machine's view of itself (issue 12 item 5), what `rackseal-agent run` polls:
 *
 *   GET /node/v1/self    (signed with the node credential)    → NodeSelfResponse
 *
 * Every node route after enrollment is signed with the node credential (libs/node-identity:
 * `Authorization: RackSeal-HMAC-SHA256 …` and `Content-Digest`); a refusal is a 401 with one of
 * NODE_REQUEST_REFUSAL_CODES.
 */

/** Route of the self call, below the node API base path (nodeApiPath). */
export const SELF_ROUTE = 'self';

/**
 * The states in which a machine's credential authenticates: attested, or attesting again after
 * having been attested — and, for this route alone, quarantined (so it learns when to try again).
 */
export type CallingMachineState = 'attested' | 'attesting' | 'quarantined';

export interface NodeSelfResponse {
  readonly machineId: string;
  readonly serial: string;
  /** The machine's group of the inventory (its PCR policy's), null when it has none. */
  readonly group: string | null;
  readonly state: CallingMachineState;
  /** The latest successful attestation (ISO 8601). */
  readonly lastAttestedAt: string | null;
  /** When the machine must have attested again (lastAttestedAt + the control plane's interval). */
  readonly nextAttestationDue: string | null;
  /**
   * True when the machine should re-attest now: its next attestation is due, an operator asked
   * (POST /v1/machines/:ref/reattest), or it is quarantined and its group's PCR policy changed since
   * (a `policy promote` or `set` may approve the state it was quarantined for).
   */
  readonly reattest: boolean;
}

/**
 * The codes of a refused signed node request (HTTP 401), one per libs/node-identity refusal reason
 * plus the machine's state: stable, the agent branches on them (`node.stale`: correct the clock from
 * the `Date` header and retry once; `node.unknown-credential`, `node.machine-not-attested`:
 * attest again).
 */
export const NODE_REQUEST_REFUSAL_CODES = [
  'node.missing-credential',
  'node.malformed',
  'node.unknown-credential',
  'node.bad-signature',
  'node.stale',
  'node.replayed',
  'node.body-digest-mismatch',
  'node.machine-not-attested',
] as const;
export type NodeRequestRefusalCode = (typeof NODE_REQUEST_REFUSAL_CODES)[number];
