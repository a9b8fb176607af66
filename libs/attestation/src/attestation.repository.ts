import { Injectable } from '@nestjs/common';
import type { SealedColumn } from '@rackseal/envelope';
import type { MachineState } from '@rackseal/machines';
import type { EntityManager } from 'typeorm';

/** How a registration ended (`superseded`: a newer start for the same machine replaced it). */
export type RegistrationOutcome = 'attested' | 'quarantined' | 'refused' | 'superseded';

/** The states a machine may start an attestation from, and return to. */
export type PreviousState = Extract<MachineState, 'imported' | 'attested' | 'quarantined'>;

/** One row of `attestation_registrations`: everything the finish call checks, together. */
export interface Registration {
  readonly id: string;
  readonly machineId: string;
  readonly previousState: PreviousState;
  readonly ekPubHash: string;
  /** TPMT_PUBLIC of the EK the credential was made for. */
  readonly ekPublic: Buffer;
  /** TPMT_PUBLIC of the AK. */
  readonly akPublic: Buffer;
  readonly akName: Buffer;
  /** The credential secret, sealed (libs/envelope, context registrationSecretContext(id)). */
  readonly secretSealed: Buffer;
  readonly nonce: Buffer;
  readonly pcrBank: string;
  readonly pcrs: readonly number[];
  readonly createdAt: Date;
  readonly deadline: Date;
  readonly finishedAt: Date | null;
  readonly outcome: RegistrationOutcome | null;
  readonly failureCode: string | null;
  readonly failureReason: string | null;
  readonly explanation: unknown;
  readonly measured: unknown;
}

export type NewRegistration = Omit<Registration, 'finishedAt' | 'outcome' | 'failureCode' | 'failureReason' | 'explanation' | 'measured'>;

/** How a finished registration is recorded. */
export interface RegistrationEnd {
  readonly outcome: RegistrationOutcome;
  readonly failureCode?: string;
  readonly failureReason?: string;
  /** Explanation lines (policy mismatch, drift in a warn group). */
  readonly explanation?: readonly string[];
  /** The quoted PCR values, PCR index → hex, once the quote verified. */
  readonly measured?: Readonly<Record<string, string>>;
}

/**
 * What a machine measured in one finished registration whose quote verified (`attestation_evidence`):
 * the quoted PCR values of the registration's bank and the event log the agent sent, if it sent one.
 */
export interface AttestationEvidence {
  readonly registrationId: string;
  readonly at: Date;
  readonly bank: string;
  /** PCR index → lowercase hex. */
  readonly values: Readonly<Record<string, string>>;
  readonly eventLog?: Buffer;
}

/** One row of `node_credentials`. */
export interface NewNodeCredential {
  readonly credentialId: string;
  readonly machineId: string;
  readonly registrationId: string;
  /** The HMAC key, sealed (context nodeCredentialContext(credentialId)). */
  readonly keySealed: Buffer;
  readonly createdAt: Date;
}

export interface StoredNodeCredential extends NewNodeCredential {
  readonly revokedAt: Date | null;
}

interface CredentialRow {
  credential_id: string;
  machine_id: string;
  registration_id: string;
  key_sealed: Buffer;
  created_at: Date;
  revoked_at: Date | null;
}

function toCredential(r: CredentialRow): StoredNodeCredential {
  return {
    credentialId: r.credential_id,
    machineId: r.machine_id,
    registrationId: r.registration_id,
    keySealed: r.key_sealed,
    createdAt: r.created_at,
    revokedAt: r.revoked_at,
  };
}

/** The envelope context of a registration's credential secret: a blob moved to another row does not open. */
export function registrationSecretContext(registrationId: string): string {
  return `attestation-registration:${registrationId}`;
}

/** The envelope context of a node credential's key. */
export function nodeCredentialContext(credentialId: string): string {
  return `node-credential:${credentialId}`;
}

/** Longest failure reason kept (the CHECK in migration 1764500000000). */
const MAX_REASON = 2000;

interface RegistrationRow {
  id: string;
  machine_id: string;
  previous_state: PreviousState;
  ek_pub_hash: string;
  ek_public: Buffer;
  ak_public: Buffer;
  ak_name: Buffer;
  secret_sealed: Buffer;
  nonce: Buffer;
  pcr_bank: string;
  pcrs: number[];
  created_at: Date;
  deadline: Date;
  finished_at: Date | null;
  outcome: RegistrationOutcome | null;
  failure_code: string | null;
  failure_reason: string | null;
  failure_explanation: { lines?: string[]; measured?: Record<string, string> } | null;
}

const REGISTRATION_COLUMNS =
  'id, machine_id, previous_state, ek_pub_hash, ek_public, ak_public, ak_name, secret_sealed, nonce, pcr_bank, pcrs, created_at, deadline, finished_at, outcome, failure_code, failure_reason, failure_explanation';

function toRegistration(r: RegistrationRow): Registration {
  return {
    id: r.id,
    machineId: r.machine_id,
    previousState: r.previous_state,
    ekPubHash: r.ek_pub_hash,
    ekPublic: r.ek_public,
    akPublic: r.ak_public,
    akName: r.ak_name,
    secretSealed: r.secret_sealed,
    nonce: r.nonce,
    pcrBank: r.pcr_bank,
    pcrs: r.pcrs.map(Number),
    createdAt: r.created_at,
    deadline: r.deadline,
    finishedAt: r.finished_at,
    outcome: r.outcome,
    failureCode: r.failure_code,
    failureReason: r.failure_reason,
    explanation: r.failure_explanation?.lines ?? null,
    measured: r.failure_explanation?.measured ?? null,
  };
}

/**
 * The one owner of `attestation_registrations` and `node_credentials` (docs/architecture.md §9;
 * `node_request_nonces` is NodeRequestNonces').
 * Every method runs in the caller's transaction, so a decision, the machine's transition and the
 * audit record commit together.
 */
@Injectable()
export class AttestationRepository {
  async insert(registration: NewRegistration, manager: EntityManager): Promise<void> {
    const r = registration;
    await manager.query(
      `INSERT INTO attestation_registrations (id, machine_id, previous_state, ek_pub_hash, ek_public, ak_public, ak_name, secret_sealed, nonce, pcr_bank, pcrs, created_at, deadline)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::smallint[], $12, $13)`,
      [r.id, r.machineId, r.previousState, r.ekPubHash, r.ekPublic, r.akPublic, r.akName, r.secretSealed, r.nonce, r.pcrBank, r.pcrs, r.createdAt, r.deadline],
    );
  }

  /**
   * Ends every open registration of a machine as `superseded` (a newer start wins), returning the
   * state the machine had before the oldest of them (what a refusal returns it to), if any was open.
   */
  async supersedeOpen(machineId: string, at: Date, manager: EntityManager): Promise<PreviousState | undefined> {
    const rows = (await manager.query(
      `UPDATE attestation_registrations SET finished_at = $2, outcome = 'superseded'
       WHERE machine_id = $1 AND finished_at IS NULL RETURNING previous_state, created_at`,
      [machineId, at],
    )) as [{ previous_state: PreviousState; created_at: Date }[], number];
    const superseded = rows[0].sort((a, b) => a.created_at.getTime() - b.created_at.getTime());
    return superseded[0]?.previous_state;
  }

  /** The state the machine had before its newest registration started (for a machine left `attesting`). */
  async latestPreviousState(machineId: string, manager: EntityManager): Promise<PreviousState | undefined> {
    const [row] = (await manager.query(
      'SELECT previous_state FROM attestation_registrations WHERE machine_id = $1 ORDER BY created_at DESC LIMIT 1',
      [machineId],
    )) as { previous_state: PreviousState }[];
    return row?.previous_state;
  }

  /**
   * Takes a registration for its finish call, once: `UPDATE … WHERE finished_at IS NULL` takes the
   * row lock, and a concurrent finish (on any replica) re-checks the WHERE after the winner commits
   * and matches nothing (PostgreSQL READ COMMITTED). Marked `refused` until the caller records the
   * real outcome in the same transaction (end()).
   */
  async consume(id: string, at: Date, manager: EntityManager): Promise<Registration | undefined> {
    const [rows] = (await manager.query(
      `UPDATE attestation_registrations SET finished_at = $2, outcome = 'refused'
       WHERE id = $1 AND finished_at IS NULL RETURNING ${REGISTRATION_COLUMNS}`,
      [id, at],
    )) as [RegistrationRow[], number];
    const row = rows[0];
    return row === undefined ? undefined : toRegistration(row);
  }

  async findById(id: string, manager: EntityManager): Promise<Registration | undefined> {
    const [row] = (await manager.query(`SELECT ${REGISTRATION_COLUMNS} FROM attestation_registrations WHERE id = $1`, [id])) as RegistrationRow[];
    return row === undefined ? undefined : toRegistration(row);
  }

  /** Records how a consumed registration ended. */
  async end(id: string, end: RegistrationEnd, manager: EntityManager): Promise<void> {
    const details = end.explanation === undefined && end.measured === undefined ? null : JSON.stringify({ lines: end.explanation ?? [], measured: end.measured ?? {} });
    await manager.query(
      `UPDATE attestation_registrations SET outcome = $2, failure_code = $3, failure_reason = $4, failure_explanation = $5::jsonb
       WHERE id = $1 AND finished_at IS NOT NULL`,
      [id, end.outcome, end.failureCode ?? null, end.failureReason?.slice(0, MAX_REASON) ?? null, details],
    );
  }

  /**
   * Keeps what the machine measured (migration 1764600000000): called by the finish call once the
   * quote verified and the event log replayed, before the policy decides, so both a quarantined and
   * an attested registration keep it and a refused one (no such verification) never does.
   */
  async recordEvidence(machineId: string, evidence: AttestationEvidence, manager: EntityManager): Promise<void> {
    await manager.query(
      'INSERT INTO attestation_evidence (registration_id, machine_id, recorded_at, pcr_bank, pcr_values, event_log) VALUES ($1, $2, $3, $4, $5::jsonb, $6)',
      [evidence.registrationId, machineId, evidence.at, evidence.bank, JSON.stringify(evidence.values), evidence.eventLog ?? null],
    );
  }

  /** A machine's newest evidence, if any registration of it got as far as a verified quote. */
  async latestEvidence(machineId: string, manager: EntityManager): Promise<AttestationEvidence | undefined> {
    const [row] = (await manager.query(
      'SELECT registration_id, recorded_at, pcr_bank, pcr_values, event_log FROM attestation_evidence WHERE machine_id = $1 ORDER BY recorded_at DESC, registration_id DESC LIMIT 1',
      [machineId],
    )) as { registration_id: string; recorded_at: Date; pcr_bank: string; pcr_values: Record<string, string>; event_log: Buffer | null }[];
    if (row === undefined) {
      return undefined;
    }
    const evidence = { registrationId: row.registration_id, at: row.recorded_at, bank: row.pcr_bank, values: row.pcr_values };
    return row.event_log === null ? evidence : { ...evidence, eventLog: row.event_log };
  }

  /**
   * The newest evidence of each of these machines, without event logs (one statement, DISTINCT ON
   * over the (machine_id, recorded_at DESC) index): machine id → evidence, absent without any.
   */
  async latestEvidenceOfMany(machineIds: readonly string[], manager: EntityManager): Promise<Map<string, Omit<AttestationEvidence, 'eventLog'>>> {
    if (machineIds.length === 0) {
      return new Map();
    }
    const rows = (await manager.query(
      `SELECT DISTINCT ON (machine_id) machine_id, registration_id, recorded_at, pcr_bank, pcr_values FROM attestation_evidence
       WHERE machine_id = ANY($1::uuid[]) ORDER BY machine_id, recorded_at DESC, registration_id DESC`,
      [[...new Set(machineIds)]],
    )) as { machine_id: string; registration_id: string; recorded_at: Date; pcr_bank: string; pcr_values: Record<string, string> }[];
    return new Map(rows.map((r) => [r.machine_id, { registrationId: r.registration_id, at: r.recorded_at, bank: r.pcr_bank, values: r.pcr_values }]));
  }

  /** Stores a machine's new node credential; the previous live one (if any) is revoked at the same time. */
  async replaceCredential(credential: NewNodeCredential, manager: EntityManager): Promise<void> {
    await this.revokeCredentialsOf(credential.machineId, credential.createdAt, manager);
    await manager.query(
      `INSERT INTO node_credentials (credential_id, machine_id, registration_id, key_sealed, created_at) VALUES ($1, $2, $3, $4, $5)`,
      [credential.credentialId, credential.machineId, credential.registrationId, credential.keySealed, credential.createdAt],
    );
  }

  /** The live credentials among `credentialIds`, in no particular order (one statement for a batch of lookups). */
  async liveCredentials(credentialIds: readonly string[], manager: EntityManager): Promise<StoredNodeCredential[]> {
    const rows = (await manager.query(
      'SELECT credential_id, machine_id, registration_id, key_sealed, created_at, revoked_at FROM node_credentials WHERE credential_id = ANY($1::text[]) AND revoked_at IS NULL',
      [[...new Set(credentialIds)]],
    )) as CredentialRow[];
    return rows.map(toCredential);
  }

  /**
   * The machine's current AK: the AK public of the registration that produced its live node
   * credential, with that credential. Locks the credential row (FOR UPDATE) until the caller's
   * transaction ends, so a key certification serializes with another one of the machine, with the
   * re-attestation that rotates the credential and with a revoke. Undefined when none is live.
   */
  async currentAk(machineId: string, manager: EntityManager): Promise<{ credentialId: string; registrationId: string; akPublic: Buffer } | undefined> {
    const [row] = (await manager.query(
      `SELECT c.credential_id, c.registration_id, r.ak_public FROM node_credentials c JOIN attestation_registrations r ON r.id = c.registration_id
       WHERE c.machine_id = $1 AND c.revoked_at IS NULL FOR UPDATE OF c`,
      [machineId],
    )) as { credential_id: string; registration_id: string; ak_public: Buffer }[];
    return row === undefined ? undefined : { credentialId: row.credential_id, registrationId: row.registration_id, akPublic: row.ak_public };
  }

  /** The EK public of each machine's current attestation (the registration behind its live node credential), in one statement: machine id → EK public, absent without one. */
  async currentEkPublics(machineIds: readonly string[], manager: EntityManager): Promise<Map<string, Buffer>> {
    const rows = (await manager.query(
      `SELECT c.machine_id, r.ek_public FROM node_credentials c JOIN attestation_registrations r ON r.id = c.registration_id WHERE c.machine_id = ANY($1::uuid[]) AND c.revoked_at IS NULL`,
      [[...new Set(machineIds)]],
    )) as { machine_id: string; ek_public: Buffer }[];
    return new Map(rows.map((r) => [r.machine_id, r.ek_public]));
  }

  /** Which of these machines have a live node credential (hence an EK public of their current attestation). */
  async machinesWithLiveCredential(machineIds: readonly string[], manager: EntityManager): Promise<Set<string>> {
    const rows = (await manager.query('SELECT machine_id FROM node_credentials WHERE machine_id = ANY($1::uuid[]) AND revoked_at IS NULL', [machineIds])) as { machine_id: string }[];
    return new Set(rows.map((r) => r.machine_id));
  }

  /** Revokes the machine's live credential (revoke of the machine); nothing when it has none. */
  async revokeCredentialsOf(machineId: string, at: Date, manager: EntityManager): Promise<void> {
    await manager.query('UPDATE node_credentials SET revoked_at = $2 WHERE machine_id = $1 AND revoked_at IS NULL', [machineId, at]);
  }

  /** The credentials of a machine, newest first. */
  async credentialsOf(machineId: string, manager: EntityManager): Promise<StoredNodeCredential[]> {
    const rows = (await manager.query(
      'SELECT credential_id, machine_id, registration_id, key_sealed, created_at, revoked_at FROM node_credentials WHERE machine_id = $1 ORDER BY created_at DESC',
      [machineId],
    )) as CredentialRow[];
    return rows.map(toCredential);
  }
}

/** The rows of a sealed column as its pending page reads them. */
interface SealedRow {
  key: string;
  blob: Buffer;
}

/** Rows changed by an UPDATE … RETURNING (TypeORM's pg driver answers [rows, count]). */
function returnedRows(result: unknown): number {
  return Array.isArray(result) && Array.isArray(result[0]) ? (result[0] as unknown[]).length : 0;
}

/**
 * The envelopes of `attestation_registrations` and `node_credentials`, as a master-key rotation
 * re-wraps them (libs/envelope SealedColumn; listed in libs/master-keys). Bytes 2..9 of a blob
 * (SQL substring is 1-based) are its KEK ID.
 */
export const ATTESTATION_SEALED_COLUMNS: readonly SealedColumn[] = [
  {
    name: 'attestation_registrations.secret_sealed',
    async pendingPage(db, kekId, after, limit) {
      const rows = (await db.query(
        `SELECT id::text AS key, secret_sealed AS blob FROM attestation_registrations
          WHERE substring(secret_sealed from 2 for 8) <> $1 AND ($2::uuid IS NULL OR id > $2::uuid)
          ORDER BY id LIMIT $3 FOR UPDATE`,
        [kekId, after ?? null, limit],
      )) as SealedRow[];
      return rows.map((r) => ({ key: r.key, blob: r.blob, context: registrationSecretContext(r.key) }));
    },
    async replace(db, key, previous, blob) {
      return returnedRows(await db.query('UPDATE attestation_registrations SET secret_sealed = $3 WHERE id = $1::uuid AND secret_sealed = $2 RETURNING id', [key, previous, blob])) === 1;
    },
    async countPending(db, kekId) {
      const [row] = (await db.query('SELECT count(*)::int AS n FROM attestation_registrations WHERE substring(secret_sealed from 2 for 8) <> $1', [kekId])) as { n: number }[];
      return row!.n;
    },
  },
  {
    name: 'node_credentials.key_sealed',
    async pendingPage(db, kekId, after, limit) {
      const rows = (await db.query(
        `SELECT credential_id AS key, key_sealed AS blob FROM node_credentials
          WHERE substring(key_sealed from 2 for 8) <> $1 AND ($2::text IS NULL OR credential_id > $2)
          ORDER BY credential_id LIMIT $3 FOR UPDATE`,
        [kekId, after ?? null, limit],
      )) as SealedRow[];
      return rows.map((r) => ({ key: r.key, blob: r.blob, context: nodeCredentialContext(r.key) }));
    },
    async replace(db, key, previous, blob) {
      return returnedRows(await db.query('UPDATE node_credentials SET key_sealed = $3 WHERE credential_id = $1 AND key_sealed = $2 RETURNING credential_id', [key, previous, blob])) === 1;
    },
    async countPending(db, kekId) {
      const [row] = (await db.query('SELECT count(*)::int AS n FROM node_credentials WHERE substring(key_sealed from 2 for 8) <> $1', [kekId])) as { n: number }[];
      return row!.n;
    },
  },
];
