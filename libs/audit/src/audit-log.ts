import { Injectable } from '@nestjs/common';
import { Clock } from '@rackseal/platform';
import { DataSource, type EntityManager } from 'typeorm';
import { AUDIT_OUTCOMES, type AuditEntry, type AuditOutcome, type AuditRecord } from './audit-entry';
import { epochMicrosOf, RECORDED_AT_MICROS_SQL, recordedAtText } from './audit-timestamp';
import { AuditCheckpointStore, type StoredCheckpoint, type StoredSigningKey } from './audit-checkpoints';
import { AuditError, AuditVerificationBusyError } from './audit-errors';
import { AuditProofs, type ConsistencyProof, type InclusionProof } from './audit-proofs';
import { type AuditTreeVerifyOptions, type AuditVerification, verifyAuditTreeSnapshot } from './audit-tree-verifier';
import { AuditDetailsError, canonicalJson, type JsonValue } from './canonical-json';

/** A stored record as the operator API lists it: `seq` and `leafHash` are null while it is pending. */
export interface ListedAuditRecord extends AuditEntry {
  readonly id: number;
  readonly seq: number | null;
  readonly recordedAt: Date;
  /**
   * recorded_at exactly as a leaf covers it (audit-timestamp.ts): the Date's ISO text for the whole
   * milliseconds AuditLog writes, all six fractional digits otherwise, so a verifier that recomputes
   * the leaf from what the API shows (`rackseal audit prove`, the dashboard) gets the stored bytes.
   * Undefined for a value no writer stores (±infinity).
   */
  readonly recordedAtText: string | undefined;
  readonly leafHash: Buffer | null;
}

/** AuditLog.list: a page after `after`, optionally filtered. */
export interface AuditListQuery {
  readonly after?: number;
  readonly before?: number;
  /** Newest first (paging down with `before`), else oldest first (paging up with `after`). */
  readonly newest?: boolean;
  readonly limit: number;
  readonly actor?: string;
  readonly action?: string;
  readonly subject?: string;
  readonly since?: Date;
  readonly until?: Date;
}

interface ListedRow {
  id: string;
  seq: string | null;
  recorded_at: Date;
  recorded_at_us: string | null;
  actor: string;
  action: string;
  subject: string;
  outcome: AuditOutcome;
  details: { [key: string]: JsonValue };
  leaf_hash: Buffer | null;
}

/**
 * The one writer of `audit_log` records. An append is one INSERT of a *pending* record — no
 * sequence number, no neighbour's hash, no row every writer updates — so appends in any number of
 * transactions and processes never wait for each other; the sequencer (audit-sequencer.ts) later
 * gives committed records their place in the Merkle tree. Pass the caller's EntityManager to make
 * the record part of the caller's transaction: a decision and its audit record commit together or
 * not at all.
 */
@Injectable()
export class AuditLog {
  private verifying = false;

  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
  ) {}

  async append(entry: AuditEntry, manager?: EntityManager): Promise<AuditRecord> {
    validateEntry(entry);
    const recordedAt = this.clock.now();
    // Stored as the exact text the leaf will later cover (audit-timestamp.ts); defined for every valid Date.
    const recordedAtStored = recordedAtText(epochMicrosOf(recordedAt))!;
    const [row] = (await (manager ?? this.dataSource.manager).query(
      `INSERT INTO audit_log (recorded_at, actor, action, subject, outcome, details)
       VALUES ($1::timestamptz, $2, $3, $4, $5, $6::jsonb) RETURNING id`,
      [recordedAtStored, entry.actor, entry.action, entry.subject, entry.outcome, canonicalJson(entry.details)],
    )) as { id: string }[];
    return { ...entry, id: Number(row!.id), recordedAt };
  }

  /**
   * Recomputes the tree from the records and checks it against everything stored
   * (audit-tree-verifier.ts). One at a time per process: a second call while one runs is refused
   * (audit.busy, 503 with Retry-After) rather than queued behind it.
   */
  async verify(options: AuditTreeVerifyOptions = {}): Promise<AuditVerification> {
    if (this.verifying) {
      throw new AuditVerificationBusyError();
    }
    this.verifying = true;
    try {
      return await verifyAuditTreeSnapshot(this.dataSource, options);
    } finally {
      this.verifying = false;
    }
  }

  /** The newest signed checkpoint (audit.no-checkpoint before the sequencer signed one). */
  latestCheckpoint(): Promise<StoredCheckpoint> {
    return AuditProofs.latestCheckpoint(this.dataSource);
  }

  /** Every key that ever signed checkpoints. */
  publicKeys(): Promise<StoredSigningKey[]> {
    return AuditCheckpointStore.publicKeys(this.dataSource);
  }

  /** Record `seq` and the proof that it is in the signed tree of `size` leaves (default: the latest checkpoint). */
  /**
   * Appends `entries` with one INSERT (a batch of decisions made in one transaction: the mailbox's
   * acks of one batch), each record exactly as `append` would store it; answers them in order.
   */
  async appendMany(entries: readonly AuditEntry[], manager?: EntityManager): Promise<AuditRecord[]> {
    if (entries.length === 0) {
      return [];
    }
    entries.forEach(validateEntry);
    const recordedAt = this.clock.now();
    const recordedAtStored = recordedAtText(epochMicrosOf(recordedAt))!;
    const rows = (await (manager ?? this.dataSource.manager).query(
      `INSERT INTO audit_log (recorded_at, actor, action, subject, outcome, details)
       SELECT $1::timestamptz, actor, action, subject, outcome, details::jsonb
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) WITH ORDINALITY AS e (actor, action, subject, outcome, details, n)
        ORDER BY n
       RETURNING id`,
      [recordedAtStored, entries.map((e) => e.actor), entries.map((e) => e.action), entries.map((e) => e.subject), entries.map((e) => e.outcome), entries.map((e) => canonicalJson(e.details))],
    )) as { id: string }[];
    // INSERT … SELECT … ORDER BY assigns the serial ids in that order; RETURNING answers them in it too.
    const ids = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
    return entries.map((entry, i) => ({ ...entry, id: ids[i]!, recordedAt }));
  }

  /**
   * For a statement that appends its own records (auditInsertFrom): validates each record as
   * `append` would — the details the statement builds must be ids and numbers, which these stand for
   * — and answers the recorded_at text (the clock's now) to bind.
   */
  statementRecordedAt(entries: readonly AuditEntry[]): string {
    entries.forEach(validateEntry);
    return recordedAtText(epochMicrosOf(this.clock.now()))!;
  }

  async inclusionProof(seq: number, size?: number): Promise<{ proof: InclusionProof; record: ListedAuditRecord }> {
    const proof = await AuditProofs.inclusion(this.dataSource, seq, size);
    const record = await this.bySeq(seq);
    if (record === undefined) {
      throw new AuditError('audit.not-sequenced', `record ${seq} is in the tree but missing from the log: run rackseal audit verify`);
    }
    return { proof, record };
  }

  /** The proof that the signed tree of `to` leaves (default: the latest) extends the tree of `from` leaves. */
  consistencyProof(from: number, to?: number): Promise<ConsistencyProof> {
    return AuditProofs.consistency(this.dataSource, from, to);
  }

  /** The record at tree position `seq`, if it is sequenced. */
  async bySeq(seq: number): Promise<ListedAuditRecord | undefined> {
    return (await this.select('r.seq = $1', [seq], 1))[0];
  }

  /**
   * How far the sequencer is behind: records appended but not yet sequenced and how long the oldest
   * has waited (0 when none); records sequenced but not yet covered by a signed checkpoint (a signer
   * that is stuck) and how long since they were integrated; the committed tree. What /health/ready
   * and /metrics report.
   */
  async sequencerStatus(): Promise<{
    readonly pending: number;
    readonly oldestPendingAgeMs: number;
    readonly unsigned: number;
    readonly unsignedAgeMs: number;
    readonly treeSize: number;
  }> {
    const [row] = (await this.dataSource.query(
      `SELECT (SELECT count(*)::int FROM audit_log WHERE seq IS NULL) AS pending,
              (SELECT min(recorded_at) FROM audit_log WHERE seq IS NULL) AS oldest,
              h.size, h.updated_at,
              (SELECT max(tree_size) FROM audit_checkpoints) AS signed
         FROM audit_tree_head h WHERE h.id = 1`,
    )) as { pending: number; oldest: Date | null; size: string; updated_at: Date; signed: string | null }[];
    const now = this.clock.now().getTime();
    const oldest = row?.oldest ?? null;
    const treeSize = Number(row?.size ?? 0);
    const unsigned = Math.max(0, treeSize - Number(row?.signed ?? 0));
    return {
      pending: row?.pending ?? 0,
      oldestPendingAgeMs: oldest === null ? 0 : Math.max(0, now - oldest.getTime()),
      unsigned,
      unsignedAgeMs: unsigned === 0 || row === undefined ? 0 : Math.max(0, now - row.updated_at.getTime()),
      treeSize,
    };
  }

  /**
   * Refused records among the newest `scanRecords` (a bounded scan down the primary key, whatever
   * the log's size) recorded at or after `since`, counted per action and error code
   * (`details.code`): the dashboard's "recent refusals by reason".
   */
  async refusalCounts(since: Date, scanRecords: number): Promise<{ scanned: number; byReason: { action: string; code: string | null; count: number }[] }> {
    const limit = Math.max(0, Math.floor(scanRecords));
    const [counted] = (await this.dataSource.query('SELECT count(*)::int AS scanned FROM (SELECT 1 FROM audit_log ORDER BY id DESC LIMIT $1) recent', [limit])) as { scanned: number }[];
    const rows = (await this.dataSource.query(
      `SELECT action, code, count(*)::int AS count
         FROM (SELECT action, outcome, details->>'code' AS code, recorded_at FROM audit_log ORDER BY id DESC LIMIT $2) recent
        WHERE outcome = 'refused' AND recorded_at >= $1
        GROUP BY action, code
        ORDER BY count DESC, action, code`,
      [since, limit],
    )) as { action: string; code: string | null; count: number }[];
    return { scanned: counted?.scanned ?? 0, byReason: rows.map(({ action, code, count }) => ({ action, code, count })) };
  }

  /**
   * Records with `after` < id < `before` (each bound optional), at most `limit`, in append order or,
   * with `newest`, the newest first; pending ones included. Filters are exact matches and a window
   * since ≤ recorded_at < until.
   */
  list(query: AuditListQuery): Promise<ListedAuditRecord[]> {
    const conditions = ['r.id > $1'];
    const params: unknown[] = [query.after ?? 0];
    const where = (sql: string, value: unknown): void => {
      params.push(value);
      conditions.push(sql.replace('?', `$${params.length}`));
    };
    if (query.before !== undefined) {
      where('r.id < ?', query.before);
    }
    if (query.actor !== undefined) {
      where('r.actor = ?', query.actor);
    }
    if (query.action !== undefined) {
      where('r.action = ?', query.action);
    }
    if (query.subject !== undefined) {
      where('r.subject = ?', query.subject);
    }
    if (query.since !== undefined) {
      where('r.recorded_at >= ?', query.since);
    }
    if (query.until !== undefined) {
      where('r.recorded_at < ?', query.until);
    }
    return this.select(conditions.join(' AND '), params, query.limit, query.newest === true ? 'DESC' : 'ASC');
  }

  private async select(where: string, params: unknown[], limit: number, order: 'ASC' | 'DESC' = 'ASC'): Promise<ListedAuditRecord[]> {
    const rows = (await this.dataSource.query(
      `SELECT r.id, r.seq, r.recorded_at, ${RECORDED_AT_MICROS_SQL} AS recorded_at_us, r.actor, r.action, r.subject, r.outcome, r.details, n.hash AS leaf_hash
         FROM audit_log r
         LEFT JOIN audit_tree_nodes n ON n.level = 0 AND n.idx = r.seq - 1
        WHERE ${where}
        ORDER BY r.id ${order}
        LIMIT ${limit}`,
      params,
    )) as ListedRow[];
    return rows.map((r) => ({
      id: Number(r.id),
      seq: r.seq === null ? null : Number(r.seq),
      recordedAt: r.recorded_at,
      recordedAtText: recordedAtText(r.recorded_at_us),
      actor: r.actor,
      action: r.action,
      subject: r.subject,
      outcome: r.outcome,
      details: r.details,
      leafHash: r.leaf_hash,
    }));
  }
}

function validateEntry(entry: AuditEntry): void {
  for (const field of ['actor', 'action'] as const) {
    if (typeof entry[field] !== 'string' || entry[field].length === 0 || entry[field].length > 200) {
      throw new AuditDetailsError(`audit ${field} must be 1-200 characters`);
    }
  }
  if (typeof entry.subject !== 'string' || entry.subject.length > 500) {
    throw new AuditDetailsError('audit subject must be at most 500 characters');
  }
  if (!AUDIT_OUTCOMES.includes(entry.outcome)) {
    throw new AuditDetailsError(`audit outcome must be one of ${AUDIT_OUTCOMES.join(', ')}`);
  }
  if (entry.details === null || typeof entry.details !== 'object' || Array.isArray(entry.details)) {
    throw new AuditDetailsError('audit details must be a JSON object');
  }
  // Throws on secret-looking keys and non-JSON values before anything is written.
  canonicalJson(entry.details);
}
