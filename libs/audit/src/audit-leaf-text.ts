import type { AuditEntry } from './audit-entry';
import { canonicalJson } from './canonical-json';

/*
 * Pure text, no Buffer and no node:crypto: the dashboard's bundle imports this file
 * (ui/src/audit-proof.ts) so that the browser recomputes a leaf from exactly the definition the
 * sequencer hashes, not from a copy of it.
 */

// Versioned domain separator: a future change of the leaf layout gets a new tag, old leaves keep verifying.
const LEAF_DOMAIN = 'rackseal.audit.leaf.v1\n';

/** A sequenced record as its leaf covers it: `recordedAt` is the text recordedAtText renders from the stored microseconds. */
export interface SequencedAuditContent extends AuditEntry {
  readonly seq: number;
  readonly recordedAt: string;
}

/**
 * The text of a sequenced record's Merkle leaf, whose UTF-8 bytes RFC 9162 §2.1.1 hashes as
 * H(0x00 ‖ leaf): domain ‖ canonical JSON of {seq, recordedAt, actor, action, subject, outcome,
 * details}. The seq inside makes a leaf name its own position, so a record moved elsewhere in the
 * tree no longer matches; recordedAt is the exact stored microsecond (audit-timestamp.ts), so the
 * leaf covers exactly what PostgreSQL holds.
 */
export function auditLeafText(record: SequencedAuditContent): string {
  return (
    LEAF_DOMAIN +
    canonicalJson({
      seq: record.seq,
      recordedAt: record.recordedAt,
      actor: record.actor,
      action: record.action,
      subject: record.subject,
      outcome: record.outcome,
      details: record.details,
    }, 'record')
  );
}
