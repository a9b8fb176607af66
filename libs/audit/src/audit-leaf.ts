import { auditLeafText, type SequencedAuditContent } from './audit-leaf-text';

export type { SequencedAuditContent } from './audit-leaf-text';

/** The Merkle leaf of a sequenced record: the UTF-8 bytes of auditLeafText (audit-leaf-text.ts). */
export function auditLeafBytes(record: SequencedAuditContent): Buffer {
  return Buffer.from(auditLeafText(record), 'utf8');
}
