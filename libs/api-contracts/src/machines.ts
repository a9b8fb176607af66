/**
 * A machine as the operator API shows it (GET /v1/machines) and its lifecycle states
 * (docs/architecture.md §3). libs/machines owns the transitions between the states; the names are
 * declared here so the CLI and the agent can read them without loading the data layer.
 */
export const MACHINE_STATES = ['imported', 'attesting', 'attested', 'quarantined', 'revoked'] as const;
export type MachineState = (typeof MACHINE_STATES)[number];

/** A machine; instants are ISO 8601 on the wire, Dates inside the server (`Machine<Date>`). */
export interface Machine<Time = string> {
  readonly id: string;
  readonly serial: string;
  readonly assetTag: string | null;
  readonly hostname: string | null;
  readonly group: string | null;
  /** Lowercase hex SHA-256 of the EK public area. */
  readonly ekPubHash: string;
  /** SHA-256 of the EK certificate DER; null when imported by ek_pub_hash. */
  readonly ekCertFingerprint: string | null;
  readonly state: MachineState;
  readonly importedAt: Time;
  readonly updatedAt: Time;
  readonly importId: string | null;
}
