import { Injectable } from '@nestjs/common';
import { Clock } from '@rackseal/platform';
import { DataSource, type EntityManager, MoreThan } from 'typeorm';
import { type AuditChainVerification, verifyAuditChain } from './audit-chain-verifier';
import { AUDIT_OUTCOMES, type AuditEntry, type AuditRecord } from './audit-entry';
import { auditRecordHash } from './audit-hash';
import { AuditRecordEntity } from './audit-record.entity';
import { epochMicrosOf, recordedAtText } from './audit-timestamp';
import { AuditDetailsError, canonicalJson } from './canonical-json';

interface HeadRow {
  seq: string;
  hash: Buffer;
}

/**
 * The one owner of the `audit_log` and `audit_chain_head` tables. Appends records to the hash chain. Appenders serialize on the chain-head row lock, so concurrent
 * writers in any number of processes produce one linear chain. Pass the caller's EntityManager to
 * make the record part of the caller's transaction: a decision and its audit record commit together
 * or not at all.
 */
@Injectable()
export class AuditLog {
  constructor(
    private readonly dataSource: DataSource,
    private readonly clock: Clock,
  ) {}

  async append(entry: AuditEntry, manager?: EntityManager): Promise<AuditRecord> {
    validateEntry(entry);
    if (manager?.queryRunner?.isTransactionActive) {
      return this.appendWithin(manager, entry);
    }
    return this.dataSource.transaction((m) => this.appendWithin(m, entry));
  }

  /** Records with seq greater than `after` (0: from the first), oldest first, at most `limit`. */
  list(query: { readonly after?: number; readonly limit: number }): Promise<AuditRecordEntity[]> {
    return this.dataSource.getRepository(AuditRecordEntity).find({
      where: { seq: MoreThan(query.after ?? 0) },
      order: { seq: 'ASC' },
      take: query.limit,
    });
  }

  /** Walks the whole chain (audit-chain-verifier.ts) and names the first bad record. */
  verifyChain(): Promise<AuditChainVerification> {
    return verifyAuditChain(this.dataSource);
  }

  private async appendWithin(manager: EntityManager, entry: AuditEntry): Promise<AuditRecord> {
    const [head] = (await manager.query(
      'SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE',
    )) as HeadRow[];
    if (head === undefined) {
      throw new Error('audit_chain_head is missing: the audit migration has not run');
    }
    const seq = Number(head.seq) + 1;
    const recordedAt = this.clock.now();
    // The text that is hashed is also the value stored, so the two cannot drift apart (defined for
    // every valid Date; epochMicrosOf refuses an invalid one).
    const recordedAtHashed = recordedAtText(epochMicrosOf(recordedAt))!;
    const prevHash = head.hash;
    const hash = auditRecordHash(entry, seq, recordedAtHashed, prevHash);
    await manager.query(
      `INSERT INTO audit_log (seq, recorded_at, actor, action, subject, outcome, details, prev_hash, hash)
       VALUES ($1, $2::timestamptz, $3, $4, $5, $6, $7::jsonb, $8, $9)`,
      [seq, recordedAtHashed, entry.actor, entry.action, entry.subject, entry.outcome, canonicalJson(entry.details), prevHash, hash],
    );
    await manager.query('UPDATE audit_chain_head SET seq = $1, hash = $2 WHERE id = 1', [seq, hash]);
    return { ...entry, seq, recordedAt, prevHash, hash };
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
