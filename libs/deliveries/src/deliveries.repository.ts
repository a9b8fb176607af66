import { Injectable } from '@nestjs/common';
import type { DeliveryView, SecretBinding, SecretKind } from '@rackseal/api-contracts';
import { DELIVERY_JOBS } from '@rackseal/jobs';
import { auditInsertFrom } from '@rackseal/audit';
import { DataSource, type EntityManager } from 'typeorm';
import { DELIVERY_STATES, type DeliveryState } from './delivery-state';

/** PostgreSQL channel the deciding transactions notify on commit (NOTIFY is transactional) and the relay LISTENs to. */
export const DELIVERY_OUTBOX_CHANNEL = 'rackseal_delivery_outbox';

export interface StoredDelivery {
  readonly id: string;
  readonly secretId: string;
  readonly versionId: string;
  readonly machineId: string;
  readonly binding: SecretBinding;
  readonly state: DeliveryState;
  readonly generation: number;
  readonly envelope: Buffer | null;
  readonly ackProofHash: Buffer | null;
  readonly attempts: number;
  readonly lastError: string | null;
  readonly createdAt: Date;
  readonly readyAt: Date | null;
  readonly ackedAt: Date | null;
  readonly expiresAt: Date;
}

/** A delivery to plan: the decision names the secret version and the machine. */
export interface PlannedDelivery {
  readonly id: string;
  readonly secretId: string;
  readonly versionId: string;
  readonly machineId: string;
  readonly binding: SecretBinding;
}

/** A delivery round whose job the relay or the reconciler puts on the queue. */
export interface DeliveryRound {
  readonly deliveryId: string;
  readonly generation: number;
}

/** The job a round asks for: a delivery's seal, or a pre-wrap's (issue 14 item 6). */
export type DeliveryJob = (typeof DELIVERY_JOBS)['deliver' | 'prewrap'];

/** A (disk secret version, imported machine) a pre-wrap may be planned for, with what decides it. */
export interface PrewrapCandidate {
  readonly machineId: string;
  readonly serial: string;
  readonly group: string;
  readonly secretId: string;
  readonly versionId: string;
  /** Whether the inventory holds the machine's EK certificate (an ek_pub_hash-only row has no key to wrap to). */
  readonly hasEkCertificate: boolean;
}

/** A machine's pre-wrap as the operator's export reads it. */
export interface PrewrapRow {
  readonly id: string;
  readonly state: 'prewrap-pending' | 'prewrapped';
  readonly secretName: string;
  readonly version: number;
  readonly generation: number;
  readonly envelope: Buffer | null;
  readonly sealedAt: Date | null;
}

/** A ready delivery as the mailbox answers it. */
export interface MailboxRow {
  readonly id: string;
  readonly secretName: string;
  readonly kind: SecretKind;
  readonly version: number;
  readonly binding: SecretBinding;
  readonly envelope: Buffer;
}

/** One ack of a batch: the delivery named, the calling machine, SHA-256 of the caller's proof, the audit actor. */
export interface AckRequest {
  readonly id: string;
  readonly machineId: string;
  readonly proofHash: Buffer;
  readonly actor: string;
}

/** What the ack statement decided for one ack, in the order of the checks a single ack makes. */
export type AckDecision =
  | { readonly kind: 'acked'; readonly alreadyAcked: boolean; readonly ackedAt: Date; readonly versionId: string | null }
  | { readonly kind: 'not-found'; readonly ownerId: string | null }
  | { readonly kind: 'not-ready'; readonly state: DeliveryState | null }
  | { readonly kind: 'bad-proof'; readonly state: DeliveryState };

export interface DeliveryFilter {
  /** Exactly this delivery. */
  readonly id?: string;
  readonly state?: DeliveryState;
  readonly machineId?: string;
  readonly secretId?: string;
  readonly after?: string;
  readonly limit: number;
}

interface DeliveryRow {
  id: string;
  secret_id: string;
  version_id: string;
  machine_id: string;
  binding: SecretBinding;
  state: DeliveryState;
  generation: number;
  envelope: Buffer | null;
  ack_proof_hash: Buffer | null;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  ready_at: Date | null;
  acked_at: Date | null;
  expires_at: Date;
}

const COLUMNS = 'id, secret_id, version_id, machine_id, binding, state, generation, envelope, ack_proof_hash, attempts, last_error, created_at, ready_at, acked_at, expires_at';

function toDelivery(r: DeliveryRow): StoredDelivery {
  return {
    id: r.id,
    secretId: r.secret_id,
    versionId: r.version_id,
    machineId: r.machine_id,
    binding: r.binding,
    state: r.state,
    generation: r.generation,
    envelope: r.envelope,
    ackProofHash: r.ack_proof_hash,
    attempts: r.attempts,
    lastError: r.last_error,
    createdAt: r.created_at,
    readyAt: r.ready_at,
    ackedAt: r.acked_at,
    expiresAt: r.expires_at,
  };
}

/**
 * The one owner of `deliveries` and `delivery_outbox` (migration 1765300000000). Every state change
 * is a conditional UPDATE naming the state (and round) it leaves, answering the rows it changed: an
 * empty answer means another worker, ack or reconciler got there first. The read-only joins to
 * `secrets`, `secret_versions` and `machines` name what a delivery is of (the operator's list, the
 * mailbox); nothing here writes another library's table.
 */
@Injectable()
export class DeliveriesRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Inserts the deliveries not planned yet (unique (version, machine): a repeated decision plans
   * nothing twice) with the outbox row of each one's first job, and notifies the relay on commit.
   * Answers the rounds it planned.
   */
  /**
   * Serialises the planning decisions about the same machines until the caller's transaction ends:
   * one transaction-scoped advisory lock per key (`group:<name>`, `machine:<id>`), taken in sorted
   * order so two planners never wait on each other in a cycle. A secret version and an attestation
   * deciding at once each read what the other has not committed yet (READ COMMITTED), and each
   * would plan nothing for the other; with the lock the second waits for the first's commit and its
   * reads, made after the lock, see it.
   */
  async lockPlanning(keys: readonly string[], manager: EntityManager): Promise<void> {
    for (const key of [...new Set(keys)].sort()) {
      await manager.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, [`rackseal.delivery-plan:${key}`]);
    }
  }

  async plan(deliveries: readonly PlannedDelivery[], at: Date, expiresAt: Date, manager: EntityManager): Promise<DeliveryRound[]> {
    if (deliveries.length === 0) {
      return [];
    }
    const rows = (await manager.query(
      `INSERT INTO deliveries (id, secret_id, version_id, machine_id, binding, state, generation, attempts, created_at, expires_at, updated_at)
       SELECT d.id, d.secret_id, d.version_id, d.machine_id, d.binding, 'pending', 1, 0, $6, $7, $6
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[]) AS d (id, secret_id, version_id, machine_id, binding)
       ON CONFLICT (version_id, machine_id) DO NOTHING
       RETURNING id, generation`,
      [deliveries.map((d) => d.id), deliveries.map((d) => d.secretId), deliveries.map((d) => d.versionId), deliveries.map((d) => d.machineId), deliveries.map((d) => d.binding), at, expiresAt],
    )) as { id: string; generation: number }[];
    const rounds = rows.map((r) => ({ deliveryId: r.id, generation: r.generation }));
    await this.addToOutbox(rounds, at, manager);
    return rounds;
  }

  /**
   * A failed delivery made pending again as a new round (a fresh job id), with its outbox row: an
   * operator's retry, or the machine attesting again. `where` picks them: one delivery, or a
   * machine's of some versions.
   */
  async rearm(where: { deliveryId: string } | { machineId: string; versionIds: readonly string[] }, at: Date, expiresAt: Date, manager: EntityManager): Promise<DeliveryRound[]> {
    // A failed pre-wrap of a machine that still never attested goes back to being a pre-wrap (issue 14 item 6).
    const [rows] = (await manager.query(
      `UPDATE deliveries d SET state = CASE WHEN m.state = 'imported' AND d.acked_at IS NULL AND d.ack_proof_hash IS NULL AND d.binding = 'pcr-sealed'
                                            AND EXISTS (SELECT 1 FROM secrets s WHERE s.id = d.secret_id AND s.kind = 'disk') THEN 'prewrap-pending' ELSE 'pending' END,
              generation = d.generation + 1, updated_at = $3, expires_at = $4
         FROM machines m
        WHERE m.id = d.machine_id AND d.state = 'failed' AND ${'deliveryId' in where ? 'd.id = $1 AND $2::uuid[] IS NULL' : 'd.machine_id = $1 AND d.version_id = ANY($2::uuid[])'}
        RETURNING d.id, d.generation, d.state`,
      'deliveryId' in where ? [where.deliveryId, null, at, expiresAt] : [where.machineId, where.versionIds, at, expiresAt],
    )) as [{ id: string; generation: number; state: DeliveryState }[], number];
    const rounds = rows.filter((r) => r.state === 'pending').map((r) => ({ deliveryId: r.id, generation: r.generation }));
    const prewraps = rows.filter((r) => r.state === 'prewrap-pending').map((r) => ({ deliveryId: r.id, generation: r.generation }));
    await this.addToOutbox(rounds, at, manager);
    await this.addToOutbox(prewraps, at, manager, DELIVERY_JOBS.prewrap);
    return [...rounds, ...prewraps];
  }

  private async addToOutbox(rounds: readonly DeliveryRound[], at: Date, manager: EntityManager, job: DeliveryJob = DELIVERY_JOBS.deliver): Promise<void> {
    if (rounds.length === 0) {
      return;
    }
    await manager.query(
      `INSERT INTO delivery_outbox (delivery_id, generation, created_at, job) SELECT o.delivery_id, o.generation, t.created_at, $4
         FROM unnest($1::uuid[], $2::int[]) AS o (delivery_id, generation), (VALUES ($3::timestamptz)) AS t (created_at)`,
      [rounds.map((r) => r.deliveryId), rounds.map((r) => r.generation), at, job],
    );
    // Delivered at commit, to every LISTENing relay; a rolled-back decision notifies nobody.
    await manager.query('SELECT pg_notify($1, $2)', [DELIVERY_OUTBOX_CHANNEL, String(rounds.length)]);
  }

  /**
   * Up to `limit` outbox rows not enqueued yet, locked until `manager`'s transaction ends; rows
   * another relay holds are skipped (FOR UPDATE SKIP LOCKED), so two workers never take one row.
   */
  async claimOutbox(limit: number, manager: EntityManager): Promise<(DeliveryRound & { outboxId: string; job: DeliveryJob })[]> {
    const rows = (await manager.query(
      'SELECT id, delivery_id, generation, job FROM delivery_outbox WHERE enqueued_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED',
      [limit],
    )) as { id: string; delivery_id: string; generation: number; job: DeliveryJob }[];
    return rows.map((r) => ({ outboxId: r.id, deliveryId: r.delivery_id, generation: r.generation, job: r.job }));
  }

  /** Marks claimed rows enqueued by `by` (a worker's name); answers how many it marked. */
  async markEnqueued(outboxIds: readonly string[], by: string, at: Date, manager: EntityManager): Promise<number> {
    const [, count] = (await manager.query('UPDATE delivery_outbox SET enqueued_at = $2, enqueued_by = $3 WHERE id = ANY($1::bigint[]) AND enqueued_at IS NULL', [
      outboxIds,
      at,
      by,
    ])) as [unknown, number];
    return count;
  }

  /** Deletes up to 1000 outbox rows enqueued before `before`: their job exists or its delivery moved on. */
  async pruneOutbox(before: Date): Promise<number> {
    const [, count] = (await this.dataSource.query(
      'DELETE FROM delivery_outbox WHERE id IN (SELECT id FROM delivery_outbox WHERE enqueued_at < $1 ORDER BY enqueued_at LIMIT 1000)',
      [before],
    )) as [unknown, number];
    return count;
  }

  /**
   * Pending deliveries (after `after`, by id) whose current round's outbox row was enqueued before
   * `enqueuedBefore` — or pruned: their job should exist; the reconciler enqueues it again (a no-op
   * when it does). Rounds still in the outbox are the relay's.
   */
  async pendingRounds(after: string | undefined, enqueuedBefore: Date, limit: number): Promise<(DeliveryRound & { job: DeliveryJob })[]> {
    const rows = (await this.dataSource.query(
      `SELECT d.id, d.generation, d.state FROM deliveries d
         LEFT JOIN delivery_outbox o ON o.delivery_id = d.id AND o.generation = d.generation
        WHERE d.state IN ('pending', 'prewrap-pending') AND ($1::uuid IS NULL OR d.id > $1) AND (o.id IS NULL OR o.enqueued_at < $2)
        ORDER BY d.id LIMIT $3`,
      [after ?? null, enqueuedBefore, limit],
    )) as { id: string; generation: number; state: DeliveryState }[];
    return rows.map((r) => ({ deliveryId: r.id, generation: r.generation, job: r.state === 'pending' ? DELIVERY_JOBS.deliver : DELIVERY_JOBS.prewrap }));
  }

  // ── Pre-wrapped disk keys (issue 14 item 6) ──────────────────────────────────────────────────────

  /**
   * The (latest unretired version of a `disk` `pcr-sealed` secret, machine) pairs a pre-wrap may be
   * planned for: machines still `imported` (never attested), in a group, targeted by the secret
   * (its group or the machine itself); `where` narrows them to an import's machines or one version.
   * Machines without an EK certificate are answered too (`hasEkCertificate` false), to be counted.
   */
  async prewrapCandidates(where: { importId: string } | { versionId: string }, manager: EntityManager): Promise<PrewrapCandidate[]> {
    const rows = (await manager.query(
      `SELECT m.id AS machine_id, m.serial, m.group_name, s.id AS secret_id, v.id AS version_id, m.ek_cert IS NOT NULL AS has_cert
         FROM machines m
         JOIN secrets s ON s.kind = 'disk' AND s.binding = 'pcr-sealed' AND (s.target_group = m.group_name OR s.target_machine_id = m.id)
         JOIN secret_versions v ON v.secret_id = s.id AND v.retired_at IS NULL AND v.version = (SELECT max(version) FROM secret_versions WHERE secret_id = s.id)
        WHERE m.state = 'imported' AND m.group_name IS NOT NULL AND ${'importId' in where ? 'm.import_id = $1' : 'v.id = $1'}
        ORDER BY m.id, s.id`,
      ['importId' in where ? where.importId : where.versionId],
    )) as { machine_id: string; serial: string; group_name: string; secret_id: string; version_id: string; has_cert: boolean }[];
    return rows.map((r) => ({ machineId: r.machine_id, serial: r.serial, group: r.group_name, secretId: r.secret_id, versionId: r.version_id, hasEkCertificate: r.has_cert }));
  }

  /**
   * Inserts pre-wraps (state `prewrap-pending`, round 1) not planned yet — unique (version, machine),
   * so a re-import or a repeated decision plans nothing twice — with their `delivery.prewrap` outbox
   * rows. Answers the rounds it planned.
   */
  async planPrewraps(deliveries: readonly PlannedDelivery[], at: Date, expiresAt: Date, manager: EntityManager): Promise<DeliveryRound[]> {
    if (deliveries.length === 0) {
      return [];
    }
    const rows = (await manager.query(
      `INSERT INTO deliveries (id, secret_id, version_id, machine_id, binding, state, generation, attempts, created_at, expires_at, updated_at)
       SELECT d.id, d.secret_id, d.version_id, d.machine_id, 'pcr-sealed', 'prewrap-pending', 1, 0, $5, $6, $5
         FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[]) AS d (id, secret_id, version_id, machine_id)
       ON CONFLICT (version_id, machine_id) DO NOTHING
       RETURNING id, generation`,
      [deliveries.map((d) => d.id), deliveries.map((d) => d.secretId), deliveries.map((d) => d.versionId), deliveries.map((d) => d.machineId), at, expiresAt],
    )) as { id: string; generation: number }[];
    const rounds = rows.map((r) => ({ deliveryId: r.id, generation: r.generation }));
    await this.addToOutbox(rounds, at, manager, DELIVERY_JOBS.prewrap);
    return rounds;
  }

  /** prewrap-pending → prewrapped with the envelope sealed to the inventory EK; undefined when another run won (or the round moved on). */
  async markPrewrapped(id: string, generation: number, envelope: Buffer, at: Date, manager: EntityManager): Promise<StoredDelivery | undefined> {
    const [rows] = (await manager.query(
      `UPDATE deliveries SET state = 'prewrapped', envelope = $3, ready_at = $4, last_error = NULL, updated_at = $4
        WHERE id = $1 AND generation = $2 AND state = 'prewrap-pending' RETURNING ${COLUMNS}`,
      [id, generation, envelope, at],
    )) as [DeliveryRow[], number];
    return rows[0] === undefined ? undefined : toDelivery(rows[0]);
  }

  /** prewrap-pending → failed (its last attempt), like markFailed. */
  async markPrewrapFailed(id: string, generation: number, code: string, at: Date, manager: EntityManager): Promise<StoredDelivery | undefined> {
    const [rows] = (await manager.query(
      `UPDATE deliveries SET state = 'failed', last_error = $3, updated_at = $4 WHERE id = $1 AND generation = $2 AND state = 'prewrap-pending' RETURNING ${COLUMNS}`,
      [id, generation, code, at],
    )) as [DeliveryRow[], number];
    return rows[0] === undefined ? undefined : toDelivery(rows[0]);
  }

  /**
   * The machine attested: its pre-wraps (sealed or not) become its normal deliveries — pending in a
   * new round, envelope dropped, with their `delivery.deliver` outbox rows — of the same version,
   * so of the same material (the key its disk was formatted with). Answers the rounds.
   */
  async confirmPrewraps(machineId: string, at: Date, expiresAt: Date, manager: EntityManager): Promise<DeliveryRound[]> {
    const [rows] = (await manager.query(
      `UPDATE deliveries SET state = 'pending', generation = generation + 1, envelope = NULL, ready_at = NULL, last_error = NULL, attempts = 0, updated_at = $2, expires_at = $3
        WHERE machine_id = $1 AND state IN ('prewrap-pending', 'prewrapped')
        RETURNING id, generation`,
      [machineId, at, expiresAt],
    )) as [{ id: string; generation: number }[], number];
    const rounds = rows.map((r) => ({ deliveryId: r.id, generation: r.generation }));
    await this.addToOutbox(rounds, at, manager);
    return rounds;
  }

  /** A machine's pre-wraps, newest version first per secret (the operator's export). */
  async prewrapsOf(machineId: string, manager?: EntityManager): Promise<PrewrapRow[]> {
    const rows = (await (manager ?? this.dataSource).query(
      `SELECT d.id, d.state, s.name, v.version, d.generation, d.envelope, d.ready_at FROM deliveries d
         JOIN secrets s ON s.id = d.secret_id JOIN secret_versions v ON v.id = d.version_id
        WHERE d.machine_id = $1 AND d.state IN ('prewrap-pending', 'prewrapped') ORDER BY s.name, v.version DESC`,
      [machineId],
    )) as { id: string; state: 'prewrap-pending' | 'prewrapped'; name: string; version: number; generation: number; envelope: Buffer | null; ready_at: Date | null }[];
    return rows.map((r) => ({ id: r.id, state: r.state, secretName: r.name, version: r.version, generation: r.generation, envelope: r.envelope, sealedAt: r.ready_at }));
  }

  async find(id: string, manager?: EntityManager, lock = false): Promise<StoredDelivery | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${COLUMNS} FROM deliveries WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id])) as DeliveryRow[];
    return row === undefined ? undefined : toDelivery(row);
  }

  /**
   * One more attempt of round `generation`, counted while it is pending (or `prewrap-pending`): the
   * delivery as it is then, or undefined when it is not pending in that round (another run, an ack,
   * a cancel or a new round got there first). One statement for the read and the count.
   */
  async countAttempt(id: string, generation: number, at: Date, state: 'pending' | 'prewrap-pending' = 'pending'): Promise<StoredDelivery | undefined> {
    const [rows] = (await this.dataSource.query(
      `UPDATE deliveries SET attempts = attempts + 1, updated_at = $3 WHERE id = $1 AND generation = $2 AND state = $4 RETURNING ${COLUMNS}`,
      [id, generation, at, state],
    )) as [DeliveryRow[], number];
    return rows[0] === undefined ? undefined : toDelivery(rows[0]);
  }

  /**
   * countAttempt for a batch of rounds (concurrent jobs of one worker) in one statement: the rows it
   * counted an attempt of, as they are then. A round named twice is counted once (the first run),
   * as two statements would count it once each and the second run would lose its `pending → ready`.
   */
  async countAttempts(rounds: readonly DeliveryRound[], at: Date): Promise<StoredDelivery[]> {
    const [rows] = (await this.dataSource.query(
      `UPDATE deliveries d SET attempts = d.attempts + 1, updated_at = $3
         FROM (SELECT DISTINCT id, generation FROM unnest($1::uuid[], $2::int[]) AS r (id, generation)) r
        WHERE d.id = r.id AND d.generation = r.generation AND d.state = 'pending' RETURNING ${COLUMNS.split(', ').map((c) => `d.${c}`).join(', ')}`,
      [rounds.map((r) => r.deliveryId), rounds.map((r) => r.generation), at],
    )) as [DeliveryRow[], number];
    return rows.map(toDelivery);
  }

  /** The code of a failed attempt, kept while the delivery stays pending for the next one. */
  async recordError(id: string, generation: number, code: string, at: Date): Promise<void> {
    await this.dataSource.query(`UPDATE deliveries SET last_error = $3, updated_at = $4 WHERE id = $1 AND generation = $2 AND state IN ('pending', 'prewrap-pending')`, [id, generation, code, at]);
  }

  /**
   * pending → ready for a batch of sealed deliveries (one statement): each in its round and only while
   * pending, envelope and proof hash written; answers the rows it changed. Callers name each delivery
   * once per batch.
   */
  async markReadyMany(items: readonly { id: string; generation: number; envelope: Buffer; ackProofHash: Buffer }[], at: Date, manager: EntityManager): Promise<StoredDelivery[]> {
    if (items.length === 0) {
      return [];
    }
    const [rows] = (await manager.query(
      `UPDATE deliveries d SET state = 'ready', envelope = r.envelope, ack_proof_hash = r.hash, ready_at = $5, last_error = NULL, updated_at = $5
         FROM unnest($1::uuid[], $2::int[], $3::bytea[], $4::bytea[]) AS r (id, generation, envelope, hash)
        WHERE d.id = r.id AND d.generation = r.generation AND d.state = 'pending' RETURNING ${COLUMNS.split(', ').map((c) => `d.${c}`).join(', ')}`,
      [items.map((i) => i.id), items.map((i) => i.generation), items.map((i) => i.envelope), items.map((i) => i.ackProofHash), at],
    )) as [DeliveryRow[], number];
    return rows.map(toDelivery);
  }

  /** pending → failed (the dead letter) with the last error's code. */
  async markFailed(id: string, generation: number, code: string, at: Date, manager: EntityManager): Promise<StoredDelivery | undefined> {
    const [rows] = (await manager.query(
      `UPDATE deliveries SET state = 'failed', last_error = $3, updated_at = $4 WHERE id = $1 AND generation = $2 AND state = 'pending' RETURNING ${COLUMNS}`,
      [id, generation, code, at],
    )) as [DeliveryRow[], number];
    return rows[0] === undefined ? undefined : toDelivery(rows[0]);
  }

  /** pending | ready | failed | prewrap-pending | prewrapped → cancelled (the machine was revoked); the envelope is dropped. */
  async cancel(id: string, at: Date, manager: EntityManager): Promise<StoredDelivery | undefined> {
    const [rows] = (await manager.query(
      `UPDATE deliveries SET state = 'cancelled', envelope = NULL, updated_at = $2 WHERE id = $1 AND state IN ('pending', 'ready', 'failed', 'prewrap-pending', 'prewrapped') RETURNING ${COLUMNS}`,
      [id, at],
    )) as [DeliveryRow[], number];
    return rows[0] === undefined ? undefined : toDelivery(rows[0]);
  }

  /**
   * A revoked machine's live deliveries (pending, ready, failed) → cancelled, envelopes dropped, in
   * the revocation's transaction; answers their ids.
   */
  async cancelForMachine(machineId: string, at: Date, manager: EntityManager): Promise<string[]> {
    const [rows] = (await manager.query(
      `UPDATE deliveries SET state = 'cancelled', envelope = NULL, updated_at = $2 WHERE machine_id = $1 AND state IN ('pending', 'ready', 'failed', 'prewrap-pending', 'prewrapped') RETURNING id`,
      [machineId, at],
    )) as [{ id: string }[], number];
    return rows.map((r) => r.id);
  }

  /**
   * The live deliveries of retired versions → cancelled (their machines have the newer one); answers
   * their ids. Rows another transaction holds (an ack of the old version in flight) are skipped, not
   * waited for — waiting could deadlock with that ack's own retirement check — and left to
   * `cancelRetired`, the reconciler's sweep.
   */
  async cancelForVersions(versionIds: readonly string[], at: Date, manager: EntityManager): Promise<string[]> {
    if (versionIds.length === 0) {
      return [];
    }
    const [rows] = (await manager.query(
      `UPDATE deliveries SET state = 'cancelled', envelope = NULL, updated_at = $2
        WHERE id IN (SELECT id FROM deliveries WHERE version_id = ANY($1::uuid[]) AND state IN ('pending', 'ready', 'failed', 'prewrap-pending', 'prewrapped') FOR UPDATE SKIP LOCKED)
          AND state IN ('pending', 'ready', 'failed', 'prewrap-pending', 'prewrapped')
        RETURNING id`,
      [versionIds, at],
    )) as [{ id: string }[], number];
    return rows.map((r) => r.id);
  }

  /** Up to `limit` live deliveries of retired versions → cancelled (what a retirement skipped); answers their ids. */
  async cancelRetired(at: Date, limit: number, manager: EntityManager): Promise<string[]> {
    const [rows] = (await manager.query(
      `UPDATE deliveries SET state = 'cancelled', envelope = NULL, updated_at = $1
        WHERE id IN (SELECT d.id FROM deliveries d JOIN secret_versions v ON v.id = d.version_id
                      WHERE v.retired_at IS NOT NULL AND d.state IN ('pending', 'ready', 'failed', 'prewrap-pending', 'prewrapped') LIMIT $2 FOR UPDATE OF d SKIP LOCKED)
          AND state IN ('pending', 'ready', 'failed', 'prewrap-pending', 'prewrapped')
        RETURNING id`,
      [at, limit],
    )) as [{ id: string }[], number];
    return rows.map((r) => r.id);
  }

  /**
   * The shared secrets a machine held (issue 14 item 7): opaque secrets targeted at a group of which
   * it has a delivery acked, or ready (the envelope sat in its mailbox: it may have read it without
   * acking). Read before the revocation cancels the ready ones.
   */
  async heldSharedSecrets(machineId: string, manager: EntityManager): Promise<string[]> {
    const rows = (await manager.query(
      `SELECT DISTINCT s.id, s.name FROM deliveries d JOIN secrets s ON s.id = d.secret_id
        WHERE d.machine_id = $1 AND d.state IN ('acked', 'ready') AND s.kind = 'opaque' AND s.target_group IS NOT NULL ORDER BY s.name`,
      [machineId],
    )) as { id: string }[];
    return rows.map((r) => r.id);
  }

  /**
   * Whether a target of the version still has a delivery to ack (pending, ready, failed: a retry may
   * still reach it). EXISTS stops at the first one: asked at every ack batch, a count would read all
   * the version's unfinished rows each time (O(targets) per ack).
   */
  async hasUnfinished(versionId: string, manager: EntityManager): Promise<boolean> {
    const [row] = (await manager.query(`SELECT EXISTS (SELECT 1 FROM deliveries WHERE version_id = $1 AND state IN ('pending', 'ready', 'failed')) AS any`, [versionId])) as { any: boolean }[];
    return row!.any;
  }

  /**
   * Up to `limit` versions an ack may have completed without retiring the older ones (the reconciler's
   * sweep): not retired, with an older version not retired, at least one delivery acked and none
   * left unfinished. Rotations in progress are few: the older-version test keeps this small.
   */
  async retirableVersions(limit: number): Promise<string[]> {
    const rows = (await this.dataSource.query(
      `SELECT v.id FROM secret_versions v
        WHERE v.retired_at IS NULL AND v.version > 1
          AND EXISTS (SELECT 1 FROM secret_versions o WHERE o.secret_id = v.secret_id AND o.version < v.version AND o.retired_at IS NULL)
          AND EXISTS (SELECT 1 FROM deliveries d WHERE d.version_id = v.id AND d.state = 'acked')
          AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.version_id = v.id AND d.state IN ('pending', 'ready', 'failed'))
        ORDER BY v.id LIMIT $1`,
      [limit],
    )) as { id: string }[];
    return rows.map((r) => r.id);
  }

  /**
   * Every delivery counted by state, every state present (the /metrics gauge, fleet-wide): one pass
   * that the index deliveries_state_id can serve index-only, read at scrape time.
   */
  async countAllByState(): Promise<Record<DeliveryState, number>> {
    const rows = (await this.dataSource.query('SELECT state, count(*)::int AS n FROM deliveries GROUP BY state')) as { state: DeliveryState; n: number }[];
    const counts = Object.fromEntries(DELIVERY_STATES.map((state) => [state, 0])) as Record<DeliveryState, number>;
    for (const row of rows) {
      counts[row.state] = row.n;
    }
    return counts;
  }

  /** A version's deliveries counted by state (the operator's rotation progress). */
  async countByState(versionId: string): Promise<Map<DeliveryState, number>> {
    const rows = (await this.dataSource.query('SELECT state, count(*)::int AS n FROM deliveries WHERE version_id = $1 GROUP BY state', [versionId])) as { state: DeliveryState; n: number }[];
    return new Map(rows.map((r) => [r.state, r.n]));
  }

  /**
   * The group's approval epoch moved on (a withdrawn PCR state): every `pcr-sealed` delivery of the
   * latest, unretired version of a secret, to a machine of the group, that is pending, ready or
   * acked is made pending in a new round (its envelope, proof and ack dropped) with its outbox row,
   * so a job seals it again at the new epoch. Pending ones too: a job that sealed at the old epoch
   * before the bump committed loses its conditional `pending → ready` on the old round.
   */
  async rewrapForGroup(group: string, at: Date, expiresAt: Date, manager: EntityManager): Promise<DeliveryRound[]> {
    const [rows] = (await manager.query(
      `UPDATE deliveries d SET state = 'pending', generation = d.generation + 1, envelope = NULL, ack_proof_hash = NULL, ready_at = NULL, acked_at = NULL,
              last_error = NULL, attempts = 0, updated_at = $2, expires_at = $3
         FROM machines m, secret_versions v
        WHERE m.id = d.machine_id AND m.group_name = $1 AND v.id = d.version_id AND v.retired_at IS NULL
          AND v.version = (SELECT max(version) FROM secret_versions WHERE secret_id = d.secret_id)
          AND d.binding = 'pcr-sealed' AND d.state IN ('pending', 'ready', 'acked')
        RETURNING d.id, d.generation`,
      [group, at, expiresAt],
    )) as [{ id: string; generation: number }[], number];
    const rounds = rows.map((r) => ({ deliveryId: r.id, generation: r.generation }));
    await this.addToOutbox(rounds, at, manager);
    // Pre-wraps too (issue 14 item 6): sealed again to the inventory EK at the new epoch, as pre-wraps.
    const [prewraps] = (await manager.query(
      `UPDATE deliveries d SET state = 'prewrap-pending', generation = d.generation + 1, envelope = NULL, ready_at = NULL, last_error = NULL, attempts = 0, updated_at = $2
         FROM machines m, secret_versions v
        WHERE m.id = d.machine_id AND m.group_name = $1 AND v.id = d.version_id AND v.retired_at IS NULL
          AND d.state IN ('prewrap-pending', 'prewrapped')
        RETURNING d.id, d.generation`,
      [group, at],
    )) as [{ id: string; generation: number }[], number];
    const prewrapRounds = prewraps.map((r) => ({ deliveryId: r.id, generation: r.generation }));
    await this.addToOutbox(prewrapRounds, at, manager, DELIVERY_JOBS.prewrap);
    return [...rounds, ...prewrapRounds];
  }

  /**
   * The acks of a batch in ONE statement (no transaction of round trips: docs/decisions.md, "Acks in
   * one statement"). Its parts, all in one snapshot and one atomic commit:
   * - `locked`: the deliveries named, locked FOR UPDATE in id order (two batches never wait on each
   *   other in a cycle); after waiting for another batch, a row is read as that batch left it;
   * - `first`: per delivery, the first ack of the batch from its owner whose proof hash equals the
   *   stored one (a comparison of SHA-256 digests of the caller's input: its timing tells nothing
   *   usable about the proof), while the delivery is ready;
   * - `acked`: ready → acked for those (envelope dropped), fenced again on `state = 'ready'`;
   * - `audited`: one `delivery.acked` record per delivery acked (auditInsertFrom, libs/audit), in
   *   the statement that acks it: both commit or neither.
   * `versionId` is the version of a delivery this statement acked (null when acked before it).
   * Answers one decision per request, in order; a delivery named twice is acked by its first valid
   * ack and answered `alreadyAcked` (with the same ackedAt) to the later ones, as two statements would.
   */
  async ackMany(requests: readonly AckRequest[], at: Date, audit: { readonly action: string; readonly outcome: string; readonly recordedAt: string }): Promise<AckDecision[]> {
    if (requests.length === 0) {
      return [];
    }
    const rows = (await this.dataSource.query(
      `WITH input AS (
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::bytea[], $4::text[]) WITH ORDINALITY AS i (id, machine_id, proof_hash, actor, n)
       ), locked AS (
         SELECT d.id, d.machine_id, d.state, d.ack_proof_hash, d.acked_at FROM deliveries d WHERE d.id IN (SELECT id FROM input) ORDER BY d.id FOR UPDATE
       ), first AS (
         SELECT DISTINCT ON (l.id) l.id, i.n, i.actor FROM locked l JOIN input i ON i.id = l.id AND i.machine_id = l.machine_id AND i.proof_hash = l.ack_proof_hash
          WHERE l.state = 'ready' ORDER BY l.id, i.n
       ), acked AS (
         UPDATE deliveries d SET state = 'acked', envelope = NULL, acked_at = $5, updated_at = $5 FROM first f WHERE d.id = f.id AND d.state = 'ready'
         RETURNING d.id, d.machine_id, d.version_id, d.generation, d.acked_at, f.n, f.actor
       ), records AS (
         SELECT actor, $6::text AS action, 'delivery:' || id::text AS subject, $7::text AS outcome, n,
                jsonb_build_object('deliveryId', id::text, 'machineId', machine_id::text, 'versionId', version_id::text, 'generation', generation) AS details
           FROM acked
       ), audited AS (
         ${auditInsertFrom('records', '$8')}
       )
       SELECT i.n, l.machine_id AS owner_id, l.state, l.ack_proof_hash IS NOT NULL AS has_proof, l.ack_proof_hash = i.proof_hash AS proof_ok,
              l.acked_at, a.n AS acked_by, a.acked_at AS acked_now_at, a.version_id
         FROM input i LEFT JOIN locked l ON l.id = i.id LEFT JOIN acked a ON a.id = i.id
        ORDER BY i.n`,
      [requests.map((r) => r.id), requests.map((r) => r.machineId), requests.map((r) => r.proofHash), requests.map((r) => r.actor), at, audit.action, audit.outcome, audit.recordedAt],
    )) as {
      n: string;
      owner_id: string | null;
      state: DeliveryState | null;
      has_proof: boolean | null;
      proof_ok: boolean | null;
      acked_at: Date | null;
      acked_by: string | null;
      acked_now_at: Date | null;
      version_id: string | null;
    }[];
    return rows.map((r, index): AckDecision => {
      if (r.owner_id === null || r.owner_id !== requests[index]!.machineId) {
        return { kind: 'not-found', ownerId: r.owner_id };
      }
      if (r.has_proof !== true || (r.state !== 'ready' && r.state !== 'acked')) {
        return { kind: 'not-ready', state: r.state };
      }
      if (r.proof_ok !== true) {
        return { kind: 'bad-proof', state: r.state };
      }
      if (r.acked_by !== null) {
        return { kind: 'acked', alreadyAcked: r.acked_by !== r.n, ackedAt: r.acked_now_at!, versionId: r.version_id! };
      }
      if (r.state === 'acked') {
        return { kind: 'acked', alreadyAcked: true, ackedAt: r.acked_at!, versionId: null };
      }
      // Ready with the right proof yet not acked: cannot happen under the row lock; refused, never guessed.
      return { kind: 'not-ready', state: r.state };
    });
  }

  /** Up to `limit` pending or ready deliveries past their expiry → expired (envelope dropped); answers them. */
  async expire(now: Date, limit: number, manager: EntityManager): Promise<StoredDelivery[]> {
    const [rows] = (await manager.query(
      `UPDATE deliveries SET state = 'expired', envelope = NULL, updated_at = $1
        WHERE id IN (SELECT id FROM deliveries WHERE state IN ('pending', 'ready') AND expires_at <= $1 ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED)
          AND state IN ('pending', 'ready')
        RETURNING ${COLUMNS}`,
      [now, limit],
    )) as [DeliveryRow[], number];
    return rows.map(toDelivery);
  }

  /**
   * The ready deliveries of each of `machineIds` (at most `limit` each, oldest first), in one
   * statement for a batch of mailbox reads; a machine with none is absent from the map.
   */
  async readyForMany(machineIds: readonly string[], limit: number): Promise<Map<string, MailboxRow[]>> {
    const rows = (await this.dataSource.query(
      `SELECT machine_id, id, name, kind, version, binding, envelope FROM (
         SELECT d.machine_id, d.id, s.name, s.kind, v.version, d.binding, d.envelope,
                row_number() OVER (PARTITION BY d.machine_id ORDER BY d.ready_at, d.id) AS n
           FROM deliveries d JOIN secret_versions v ON v.id = d.version_id JOIN secrets s ON s.id = d.secret_id
          WHERE d.machine_id = ANY($1::uuid[]) AND d.state = 'ready') r
        WHERE n <= $2 ORDER BY machine_id, n`,
      [[...new Set(machineIds)], limit],
    )) as { machine_id: string; id: string; name: string; kind: SecretKind; version: number; binding: SecretBinding; envelope: Buffer }[];
    const byMachine = new Map<string, MailboxRow[]>();
    for (const r of rows) {
      const list = byMachine.get(r.machine_id) ?? [];
      list.push({ id: r.id, secretName: r.name, kind: r.kind, version: r.version, binding: r.binding, envelope: r.envelope });
      byMachine.set(r.machine_id, list);
    }
    return byMachine;
  }

  /** The operator's list: ordered by id, keyset paged, filtered. */
  async list(filter: DeliveryFilter): Promise<DeliveryView<Date>[]> {
    const rows = (await this.dataSource.query(
      `SELECT d.id, d.state, d.binding, d.generation, d.attempts, d.last_error, d.created_at, d.ready_at, d.acked_at, d.expires_at,
              s.id AS secret_id, s.name AS secret_name, s.kind, v.version, m.id AS machine_id, m.serial
         FROM deliveries d JOIN secrets s ON s.id = d.secret_id JOIN secret_versions v ON v.id = d.version_id JOIN machines m ON m.id = d.machine_id
        WHERE ($1::text IS NULL OR d.state = $1) AND ($2::uuid IS NULL OR d.machine_id = $2) AND ($3::uuid IS NULL OR d.secret_id = $3) AND ($4::uuid IS NULL OR d.id > $4) AND ($6::uuid IS NULL OR d.id = $6)
        ORDER BY d.id LIMIT $5`,
      [filter.state ?? null, filter.machineId ?? null, filter.secretId ?? null, filter.after ?? null, filter.limit, filter.id ?? null],
    )) as {
      id: string;
      state: DeliveryState;
      binding: SecretBinding;
      generation: number;
      attempts: number;
      last_error: string | null;
      created_at: Date;
      ready_at: Date | null;
      acked_at: Date | null;
      expires_at: Date;
      secret_id: string;
      secret_name: string;
      kind: SecretKind;
      version: number;
      machine_id: string;
      serial: string;
    }[];
    return rows.map((r) => ({
      id: r.id,
      state: r.state,
      secret: { id: r.secret_id, name: r.secret_name, kind: r.kind, version: r.version },
      machine: { id: r.machine_id, serial: r.serial },
      binding: r.binding,
      generation: r.generation,
      attempts: r.attempts,
      lastError: r.last_error,
      createdAt: r.created_at,
      readyAt: r.ready_at,
      ackedAt: r.acked_at,
      expiresAt: r.expires_at,
    }));
  }
}
