import type { AuditChainProblemKind, AuditChainVerification, AuditOutcome } from '@rackseal/api-contracts';
import { auditRecordHash, GENESIS_HASH } from './audit-hash';
import { RECORDED_AT_MICROS_SQL, recordedAtText } from './audit-timestamp';
import { AuditDetailsError, canonicalJson, type JsonValue } from './canonical-json';
import type { Queryable } from './queryable';


// The verdict is what GET /v1/audit/verify answers: its shape is declared in the API contract.
export type { AuditChainProblemKind, AuditChainVerification } from '@rackseal/api-contracts';

interface Row {
  seq: string;
  /** Exact epoch microseconds as decimal text (never a JS Date, which would drop the last three digits). */
  recorded_at_us: string | null;
  actor: string;
  action: string;
  subject: string;
  outcome: AuditOutcome;
  details: { [key: string]: JsonValue };
  prev_hash: Buffer;
  hash: Buffer;
}

const BATCH = 2000;

/**
 * Walks the whole chain in seq order (keyset pages, so memory stays flat) and reports the first
 * record that proves tampering. Detects edited, deleted, inserted and reordered records, and
 * deletion of the newest records via the chain head. Cannot detect an attacker who rewrites every
 * record after a point *and* the head: anchor the head hash outside the database for that.
 */
export async function verifyAuditChain(db: Queryable): Promise<AuditChainVerification> {
  let expectedSeq = 1;
  let prevHash: Buffer = GENESIS_HASH;
  let records = 0;
  for (;;) {
    const rows = (await db.query(
      `SELECT seq, ${RECORDED_AT_MICROS_SQL} AS recorded_at_us, actor, action, subject, outcome, details, prev_hash, hash
         FROM audit_log WHERE seq >= $1 ORDER BY seq LIMIT ${BATCH}`,
      [expectedSeq],
    )) as Row[];
    const details = rows.map(detailsAsHashed);
    const inexactSeq = await firstInexactDetails(db, rows, details);
    for (const [i, row] of rows.entries()) {
      const seq = Number(row.seq);
      if (seq !== expectedSeq) {
        return fail(records, 'sequence-gap', expectedSeq, `record ${expectedSeq} is missing (next present is ${seq})`);
      }
      if (!row.prev_hash.equals(prevHash)) {
        return fail(records, 'broken-link', seq, `record ${seq} does not link to record ${seq - 1}`);
      }
      // Content no writer can produce (recorded_at ±infinity or beyond a Date, details AuditLog.append
      // refuses) or details that do not read back exactly was necessarily edited.
      const recordedAt = recordedAtText(row.recorded_at_us);
      const recomputed =
        recordedAt === undefined || details[i] === undefined || seq === inexactSeq
          ? undefined
          : auditRecordHash(
              { actor: row.actor, action: row.action, subject: row.subject, outcome: row.outcome, details: row.details },
              seq,
              recordedAt,
              row.prev_hash,
            );
      if (recomputed === undefined || !recomputed.equals(row.hash)) {
        return fail(records, 'content-mismatch', seq, `record ${seq} was modified after it was written`);
      }
      prevHash = row.hash;
      expectedSeq = seq + 1;
      records += 1;
    }
    if (rows.length < BATCH) {
      break;
    }
  }
  const [head] = (await db.query('SELECT seq, hash FROM audit_chain_head WHERE id = 1')) as { seq: string; hash: Buffer }[];
  const headSeq = head === undefined ? -1 : Number(head.seq);
  if (head === undefined || headSeq !== records || !head.hash.equals(prevHash)) {
    return fail(
      records,
      'head-mismatch',
      records + 1,
      `chain head names record ${headSeq} but the log ends at record ${records}`,
    );
  }
  return { ok: true, records, headSeq, headHash: prevHash.toString('hex') };
}

/** The canonical JSON the hash covers for a row's details, or undefined where AuditLog.append would refuse them. */
function detailsAsHashed(row: Row): string | undefined {
  try {
    return canonicalJson(row.details);
  } catch (error) {
    if (error instanceof AuditDetailsError) {
      return undefined;
    }
    throw error;
  }
}

/**
 * The first record of the page whose stored details differ from the details the verifier hashed. pg
 * reads jsonb numbers into doubles, so `9007199254740993` arrives as `…992` and would hash like the
 * original; jsonb compares numbers exactly (and `1.0` equal to `1`, the same value), so the database
 * itself says whether what was hashed is what is stored.
 */
async function firstInexactDetails(db: Queryable, rows: readonly Row[], details: readonly (string | undefined)[]): Promise<number | undefined> {
  const seqs: string[] = [];
  const texts: string[] = [];
  rows.forEach((row, i) => {
    if (details[i] !== undefined) {
      seqs.push(row.seq);
      texts.push(details[i]);
    }
  });
  if (seqs.length === 0) {
    return undefined;
  }
  const [inexact] = (await db.query(
    `SELECT stored.seq FROM unnest($1::bigint[], $2::text[]) AS hashed (seq, details)
       JOIN audit_log stored ON stored.seq = hashed.seq
      WHERE stored.details <> hashed.details::jsonb
      ORDER BY stored.seq LIMIT 1`,
    [seqs, texts],
  )) as { seq: string }[];
  return inexact === undefined ? undefined : Number(inexact.seq);
}

function fail(
  records: number,
  kind: AuditChainProblemKind,
  seq: number,
  message: string,
): AuditChainVerification {
  return { ok: false, records, problem: { kind, seq, message } };
}
