/**
 * The INSERT of audit records for a repository whose own statement decides and audits at once (a
 * data-modifying CTE: one round trip, docs/decisions.md "Acks in one statement"). `source` is a
 * relation of the statement with columns actor, action, subject, outcome (text), details (jsonb) and
 * n (the records' order: serial ids are assigned in it, as AuditLog.appendMany assigns them);
 * `recordedAtParam` binds the text AuditLog.statementRecordedAt answered. Each record is stored as
 * `append` stores it: a pending row the sequencer later canonicalises and integrates.
 */
export function auditInsertFrom(source: string, recordedAtParam: string): string {
  return `INSERT INTO audit_log (recorded_at, actor, action, subject, outcome, details)
          SELECT ${recordedAtParam}::timestamptz, actor, action, subject, outcome, details FROM ${source} ORDER BY n
          RETURNING id`;
}
