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
  /** The first successful attestation; null until there is one. */
  readonly firstAttestedAt: Time | null;
  /** The latest successful attestation; null until there is one (the fleet liveness check reads it). */
  readonly lastAttestedAt: Time | null;
  /** The latest refused attestation, kept after a later success; null when none was refused. */
  readonly lastFailure: MachineFailure<Time> | null;
}

/** Bounds of a recorded failure (the CHECK of migration 1764400000000 bounds the whole object too). */
export const MAX_FAILURE_REASON_LENGTH = 1000;
export const MAX_FAILURE_EXPLANATION_LINES = 200;
export const MAX_FAILURE_EXPLANATION_LINE_LENGTH = 300;

/**
 * Why an attestation was refused, as an operator reads it: the refusal's error code, one line of
 * reason, and the explanation lines (e.g. "PCR 4: event #12 EV_EFI_BOOT_SERVICES_APPLICATION digest
 * differs"), with the registration it ended.
 */
export interface MachineFailure<Time = string> {
  readonly at: Time;
  readonly code: string;
  readonly reason: string;
  readonly explanation: readonly string[];
  readonly registrationId?: string;
}

/** One state change of a machine, who made it and why (oldest first in MachineDetail.history). */
export interface MachineTransitionRecord<Time = string> {
  readonly seq: number;
  readonly from: MachineState;
  readonly to: MachineState;
  readonly reason: string;
  /** e.g. `token:<id>` for an operator, `system:attestation` for the verifier. */
  readonly actor: string;
  readonly at: Time;
}

/** GET /v1/machines/:ref: the machine with its whole history. */
export interface MachineDetail<Time = string> extends Machine<Time> {
  readonly history: readonly MachineTransitionRecord<Time>[];
}

/** The longest revocation reason (the transition reason's bound, migration 1764200000000). */
export const MAX_REVOKE_REASON_LENGTH = 1000;

/** POST /v1/machines/:ref/revoke. */
export interface RevokeMachineRequest {
  /** Why, for the history and the audit record: 1-1000 printable characters. */
  readonly reason: string;
}

/**
 * POST /v1/machines/:ref/revoke answers 200 either way: `changed` is false when the machine was
 * already revoked (nothing written, the first revocation's history stands), so a retried or
 * repeated revoke is harmless.
 */
export interface MachineRevocation<Time = string> {
  readonly changed: boolean;
  readonly machine: MachineDetail<Time>;
}

/**
 * POST /v1/machines/:ref/reattest: the operator asks the machine to attest again now. The agent
 * reads it as `reattest: true` from GET /node/v1/self; the next successful attestation clears it.
 * A second request before then keeps the first time (idempotent).
 */
export interface MachineReattestRequest<Time = string> {
  readonly machineId: string;
  readonly serial: string;
  readonly requestedAt: Time;
}

/**
 * GET /v1/machines filters besides paging: `state`, `group`, `notAttestedSince` (an ISO 8601
 * instant: machines, revoked ones left out, whose last successful attestation is older or that never
 * attested: the fleet liveness check of docs/architecture.md §4.8), and `overdue` (`true` only: the
 * same against each machine's own group's attestation interval, the fleet default for a group
 * without one).
 */
export interface MachineListFilters {
  readonly state?: MachineState;
  readonly group?: string;
  readonly notAttestedSince?: string;
  readonly overdue?: 'true';
}

/**
 * An instant as the operator API takes it (`notAttestedSince`): an RFC 3339 date-time with its
 * offset (`2026-03-01T10:00:00Z`, `…+02:00`), seconds and fraction optional. A time without an offset
 * would be read in whatever zone the server runs in, so it is refused. Undefined when `text` is not one
 * or names no real instant (month 13, year 0).
 */
export function parseInstant(text: string): Date | undefined {
  const match = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:[Zz]|[+-](\d{2}):(\d{2}))$/.exec(text);
  if (match === null) {
    return undefined;
  }
  const [year, month, day, hour, minute, second = 0, offsetHours = 0, offsetMinutes = 0] = match.slice(1).map((part) => (part === undefined ? undefined : Number(part)));
  // Date would roll 2026-02-30 over to 2026-03-02: the calendar day must exist as written.
  const calendar = new Date(Date.UTC(year!, month! - 1, day!));
  if (year! < 1 || calendar.getUTCMonth() !== month! - 1 || calendar.getUTCDate() !== day! || hour! > 23 || minute! > 59 || second > 59 || offsetHours > 23 || offsetMinutes > 59) {
    return undefined;
  }
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? undefined : at;
}
