import type { AuditOutcome } from './audit-entry';
import { auditLeafBytes } from './audit-leaf';
import { RECORDED_AT_MICROS_SQL, recordedAtText } from './audit-timestamp';
import { AuditDetailsError, canonicalJson, type JsonValue } from './canonical-json';

/** An audit_log row as the sequencer and the verifier read it. */
export interface AuditRow {
  id: string;
  seq: string | null;
  /** Exact epoch microseconds as decimal text (never a JS Date, which would drop the last three digits). */
  recorded_at_us: string | null;
  actor: string;
  action: string;
  subject: string;
  outcome: AuditOutcome;
  details: { [key: string]: JsonValue };
}

/** The select list that reads an AuditRow. */
export const AUDIT_ROW_COLUMNS = `id, seq, ${RECORDED_AT_MICROS_SQL} AS recorded_at_us, actor, action, subject, outcome, details`;

/**
 * The leaf bytes of a row at tree position `seq`, with the canonical details text the leaf covers;
 * undefined when the row holds content no AuditLog.append can produce (recorded_at ±infinity or
 * beyond a Date, details it refuses): such a row was written or edited around the application.
 */
export function leafOfRow(row: AuditRow, seq: number): { leaf: Buffer; detailsText: string } | undefined {
  const recordedAt = recordedAtText(row.recorded_at_us);
  let detailsText: string;
  try {
    detailsText = canonicalJson(row.details);
  } catch (error) {
    if (error instanceof AuditDetailsError) {
      return undefined;
    }
    throw error;
  }
  if (recordedAt === undefined) {
    return undefined;
  }
  const leaf = auditLeafBytes({ seq, recordedAt, actor: row.actor, action: row.action, subject: row.subject, outcome: row.outcome, details: row.details });
  return { leaf, detailsText };
}
