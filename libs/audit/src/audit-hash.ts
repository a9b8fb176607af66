import { createHash } from 'node:crypto';
import type { AuditEntry } from './audit-entry';
import { canonicalJson } from './canonical-json';

export const GENESIS_HASH = Buffer.alloc(32);

// Versioned domain separator: a future change of the hashed layout gets a new tag, old records keep verifying.
const HASH_DOMAIN = 'rackseal.audit.v1\n';

/**
 * hash = SHA-256(domain ‖ canonical JSON of {seq, recordedAt, actor, action, subject, outcome,
 * details, prevHash}). The seq and prevHash inside the hash are what make reordering, deleting
 * and re-linking records detectable. `recordedAt` is the text recordedAtText renders from the
 * stored microseconds (audit-timestamp.ts): the hash covers exactly what PostgreSQL stores.
 */
export function auditRecordHash(entry: AuditEntry, seq: number, recordedAt: string, prevHash: Buffer): Buffer {
  const content = canonicalJson({
    seq,
    recordedAt,
    actor: entry.actor,
    action: entry.action,
    subject: entry.subject,
    outcome: entry.outcome,
    details: entry.details,
    prevHash: prevHash.toString('hex'),
  });
  return createHash('sha256').update(HASH_DOMAIN).update(content).digest();
}
