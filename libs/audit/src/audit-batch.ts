import type { QueryRunner } from 'typeorm';
import { AUDIT_ROW_COLUMNS, type AuditRow, leafOfRow } from './audit-row';
import { AuditTreeStore, type TreeHead } from './audit-tree-store';
import { verifyAuditChain } from './audit-chain-verifier';
import { appendLeaves, leafHash } from './tlog';

/** A record the sequencer cannot turn into a leaf: it was written or edited around AuditLog.append. */
export class UnsequenceableRecordError extends Error {
  constructor(readonly id: number) {
    super(`audit record id ${id} holds content no writer produces (edited before it was sequenced?): the sequencer stops at it`);
    this.name = 'UnsequenceableRecordError';
  }
}

/** The former hash chain (before the transparency log) does not verify: its records are not integrated. */
export class LegacyChainBrokenError extends Error {
  constructor(message: string) {
    super(`the audit hash chain written before the transparency log does not verify, so it is not integrated: ${message}`);
    this.name = 'LegacyChainBrokenError';
  }
}

export interface BatchResult {
  /** Records integrated by this batch. */
  readonly integrated: number;
  readonly head: TreeHead;
}

/**
 * Integrates at most `limit` committed records into the tree, in one transaction on `session`:
 * their sequence numbers, every perfect subtree node they complete, and the new head commit together
 * or not at all, so a sequencer killed mid-batch leaves the tree exactly as before the batch. The head
 * row is locked first: a second sequencer that somehow runs at the same time waits and then works
 * from the head the first one committed, never from a stale one.
 *
 * Records of the former hash chain (they already carry a seq beyond the tree) come first, in seq
 * order, after the chain verified once; then pending records in append (id) order.
 */
export async function integrateBatch(session: QueryRunner, options: { limit: number; now: Date }): Promise<BatchResult> {
  await session.startTransaction();
  try {
    const head = await AuditTreeStore.head(session, { forUpdate: true });
    let rows = (await session.query(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, [
      head.size,
      options.limit,
    ])) as AuditRow[];
    const legacy = rows.length > 0;
    if (legacy && head.size === 0) {
      const chain = await verifyAuditChain(session);
      if (!chain.ok) {
        throw new LegacyChainBrokenError(`${chain.problem.kind} at record ${chain.problem.seq}: ${chain.problem.message}`);
      }
    }
    if (!legacy) {
      rows = (await session.query(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE seq IS NULL ORDER BY id LIMIT $1`, [
        options.limit,
      ])) as AuditRow[];
    }
    if (rows.length === 0) {
      await session.commitTransaction();
      return { integrated: 0, head };
    }
    const leafHashes = rows.map((row, i) => {
      const seq = head.size + 1 + i;
      if (legacy && Number(row.seq) !== seq) {
        throw new LegacyChainBrokenError(`record ${seq} is missing (next present is ${row.seq})`);
      }
      const leaf = leafOfRow(row, seq);
      if (leaf === undefined) {
        throw new UnsequenceableRecordError(Number(row.id));
      }
      return leafHash(leaf.leaf);
    });
    const border = await AuditTreeStore.border(session, head.size);
    const grown = appendLeaves(border, leafHashes);
    if (!legacy) {
      await session.query(
        `UPDATE audit_log SET seq = v.seq FROM unnest($1::bigint[], $2::bigint[]) AS v (id, seq) WHERE audit_log.id = v.id`,
        [rows.map((r) => r.id), rows.map((_, i) => head.size + 1 + i)],
      );
    }
    await AuditTreeStore.insertNodes(session, grown.newNodes);
    const next: TreeHead = { size: grown.border.size, root: grown.root, updatedAt: options.now };
    await AuditTreeStore.setHead(session, next);
    await session.commitTransaction();
    return { integrated: rows.length, head: next };
  } catch (error) {
    await session.rollbackTransaction().catch(() => undefined);
    throw error;
  }
}
