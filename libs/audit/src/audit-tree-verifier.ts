import type { AuditProblemKind, AuditVerification } from '@rackseal/api-contracts';
import { AuditCheckpointStore, type StoredCheckpoint, type StoredSigningKey } from './audit-checkpoints';
import { AUDIT_ROW_COLUMNS, type AuditRow, leafOfRow } from './audit-row';
import { AuditTreeStore } from './audit-tree-store';
import type { DataSource } from 'typeorm';
import type { Queryable } from './queryable';
import {
  appendLeaves,
  EMPTY_BORDER,
  leafHash,
  nodeKey,
  openCheckpoint,
  parseSignedNote,
  rootOfBorder,
  type TreeBorder,
  type TreeNode,
  type VerifiedCheckpoint,
} from './tlog';

export type { AuditProblemKind, AuditVerification } from '@rackseal/api-contracts';

const PAGE = 2000;

export interface AuditTreeVerifyOptions {
  /** A signed checkpoint the operator saved outside the database: the log must extend it. */
  readonly since?: string;
  /**
   * The verifier key (vkey) the operator pinned for `since`. Without it the saved note is opened with
   * the log's own keys from the database, which a superuser could have replaced.
   */
  readonly sinceKey?: string;
}

class Tampered extends Error {
  constructor(
    readonly kind: AuditProblemKind,
    readonly seq: number | null,
    message: string,
  ) {
    super(message);
  }
}

/**
 * verifyAuditTree over one read-only REPEATABLE READ snapshot (PostgreSQL §13.2.2): the sequencer
 * keeps integrating while a large log is verified, and reading the head first and the records, nodes
 * and checkpoints later would otherwise see records sequenced beyond the head it read and report a
 * rolled-back head that is not there.
 */
export function verifyAuditTreeSnapshot(dataSource: DataSource, options: AuditTreeVerifyOptions = {}): Promise<AuditVerification> {
  return dataSource.transaction('REPEATABLE READ', async (manager) => {
    await manager.query('SET TRANSACTION READ ONLY');
    return verifyAuditTree(manager, options);
  });
}

/**
 * Recomputes the audit tree from the records alone and compares it with everything stored: every
 * leaf and subtree node (what proofs are served from), the head, and every checkpoint's root and
 * signature. Names the first bad leaf. Records are read in keyset pages, so memory stays flat.
 *
 * What it cannot see from inside the database: a superuser who rewrites records *and* every node,
 * the head and the checkpoints consistently. `since` (a checkpoint note the operator saved earlier,
 * outside the database) closes that gap: the records must give the saved root at the saved size.
 */
export async function verifyAuditTree(db: Queryable, options: AuditTreeVerifyOptions = {}): Promise<AuditVerification> {
  const keys = new Map((await AuditCheckpointStore.publicKeys(db)).map((k) => [k.keyId, k]));
  let verified = 0;
  try {
    const since = options.since === undefined ? undefined : openSaved(options.since, options.sinceKey, keys);
    const head = await AuditTreeStore.head(db);
    const checkpoints = new CheckpointCursor(db, keys);
    let border: TreeBorder = EMPTY_BORDER;
    let sinceRoot: Buffer | undefined = since?.size === 0 ? rootOfBorder(border) : undefined;
    await checkpoints.check(border);

    while (border.size < head.size) {
      const rows = (await db.query(`SELECT ${AUDIT_ROW_COLUMNS} FROM audit_log WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT ${PAGE}`, [
        border.size,
        head.size,
      ])) as AuditRow[];
      if (rows.length === 0) {
        throw new Tampered('sequence-gap', border.size + 1, `records ${border.size + 1} to ${head.size} are missing: the tree head names ${head.size}`);
      }
      const stored = await AuditTreeStore.leafHashes(db, border.size, Number(rows.at(-1)!.seq));
      const storedByIndex = new Map(stored.map((s) => [s.index, s.hash]));
      const detailsTexts: { seq: number; text: string }[] = [];
      const newNodes: TreeNode[] = [];
      for (const row of rows) {
        const seq = border.size + 1;
        if (Number(row.seq) !== seq) {
          throw new Tampered('sequence-gap', seq, `record ${seq} is missing (next present is ${row.seq})`);
        }
        const leaf = leafOfRow(row, seq);
        const hash = leaf === undefined ? undefined : leafHash(leaf.leaf);
        if (hash === undefined || !hash.equals(storedByIndex.get(seq - 1) ?? Buffer.alloc(0))) {
          throw new Tampered('content-mismatch', seq, `record ${seq} does not match its leaf: it was modified, moved or inserted after it was sequenced`);
        }
        detailsTexts.push({ seq, text: leaf!.detailsText });
        const grown = appendLeaves(border, [hash]);
        border = grown.border;
        newNodes.push(...grown.newNodes);
        await checkpoints.check(border);
        if (since !== undefined && since.size === border.size) {
          sinceRoot = rootOfBorder(border);
        }
      }
      await checkExactDetails(db, detailsTexts);
      await checkStoredNodes(db, newNodes);
      verified = border.size;
    }

    const root = rootOfBorder(border);
    if (!root.equals(head.root)) {
      throw new Tampered('head-mismatch', null, `the tree head's root ${head.root.toString('hex')} is not the root ${root.toString('hex')} the ${border.size} records give`);
    }
    const beyond = (await db.query('SELECT min(seq)::text AS seq FROM audit_log WHERE seq > $1 AND hash IS NULL', [head.size])) as { seq: string | null }[];
    if (beyond[0]?.seq !== undefined && beyond[0].seq !== null) {
      throw new Tampered('head-mismatch', Number(beyond[0].seq), `record ${beyond[0].seq} is sequenced beyond the tree head (size ${head.size}): the head was rolled back`);
    }
    await checkpoints.finish(border.size);
    if (since !== undefined) {
      if (sinceRoot === undefined) {
        throw new Tampered('not-extending', null, `the log has ${border.size} records, fewer than your saved checkpoint's ${since.size}: history was removed`);
      }
      if (!sinceRoot.equals(since.rootHash)) {
        throw new Tampered(
          'not-extending',
          null,
          `the log does not extend your saved checkpoint: at size ${since.size} the records give root ${sinceRoot.toString('hex')}, your checkpoint says ${since.rootHash.toString('hex')} (history was rewritten)`,
        );
      }
    }
    const [pending] = (await db.query('SELECT count(*)::int AS n FROM audit_log WHERE seq IS NULL')) as { n: number }[];
    return {
      ok: true,
      records: border.size,
      pending: pending?.n ?? 0,
      rootHash: root.toString('hex'),
      checkpoints: checkpoints.checked,
      ...(since === undefined ? {} : { since: { treeSize: since.size, rootHash: since.rootHash.toString('hex') } }),
    };
  } catch (error) {
    if (error instanceof Tampered) {
      // Records before the first bad one verified; a problem without a record counts the whole pages that did.
      const records = error.seq === null ? verified : Math.max(0, error.seq - 1);
      return { ok: false, records, problem: { kind: error.kind, seq: error.seq, message: error.message } };
    }
    throw error;
  }
}

/** Opens the operator's saved checkpoint with their pinned key, else the log's key of the same key ID. */
function openSaved(note: string, pinnedKey: string | undefined, keys: ReadonlyMap<string, StoredSigningKey>): VerifiedCheckpoint {
  if (pinnedKey !== undefined) {
    try {
      return openCheckpoint(note, pinnedKey);
    } catch (error) {
      throw new Tampered('checkpoint-signature', null, `the saved checkpoint does not verify with the pinned key: ${(error as Error).message}`);
    }
  }
  let keyIds: string[];
  try {
    keyIds = parseSignedNote(note).signatures.map((s) => s.keyId.toString(16).padStart(8, '0'));
  } catch (error) {
    throw new Tampered('checkpoint-signature', null, `the saved checkpoint is not a signed note: ${(error as Error).message}`);
  }
  const key = keyIds.map((id) => keys.get(id)).find((k) => k !== undefined);
  if (key === undefined) {
    throw new Tampered('checkpoint-signature', null, `the saved checkpoint is signed by key ${keyIds.join(', ') || '(none)'}, which this log does not know`);
  }
  try {
    return openCheckpoint(note, key.verifierKey);
  } catch (error) {
    throw new Tampered('checkpoint-signature', null, `the saved checkpoint does not verify with key ${key.keyId}: ${(error as Error).message}`);
  }
}

/** Walks the stored checkpoints in size order alongside the recomputed tree. */
class CheckpointCursor {
  checked = 0;
  private buffered: StoredCheckpoint[] = [];
  private after = -1;
  private exhausted = false;

  constructor(
    private readonly db: Queryable,
    private readonly keys: ReadonlyMap<string, StoredSigningKey>,
  ) {}

  /** Checks the checkpoint of exactly this size, if there is one, against the recomputed border. */
  async check(border: TreeBorder): Promise<void> {
    const next = await this.peek();
    if (next === undefined || next.treeSize !== border.size) {
      return;
    }
    this.buffered.shift();
    const root = rootOfBorder(border);
    if (!next.rootHash.equals(root)) {
      throw new Tampered('checkpoint-mismatch', border.size, `the checkpoint of size ${border.size} commits to root ${next.rootHash.toString('hex')}, but the records give ${root.toString('hex')}`);
    }
    const key = this.keys.get(next.keyId);
    let opened: VerifiedCheckpoint | undefined;
    try {
      opened = key === undefined ? undefined : openCheckpoint(next.note, key.verifierKey);
    } catch {
      opened = undefined;
    }
    if (opened === undefined || opened.size !== next.treeSize || !opened.rootHash.equals(next.rootHash)) {
      throw new Tampered('checkpoint-signature', border.size, `the checkpoint of size ${border.size} is not validly signed by key ${next.keyId}`);
    }
    this.checked += 1;
  }

  /** After the walk: a checkpoint beyond the records means records were removed from the end. */
  async finish(size: number): Promise<void> {
    const next = await this.peek();
    if (next !== undefined) {
      throw new Tampered('checkpoint-mismatch', size + 1, `a checkpoint commits to ${next.treeSize} records but the log holds ${size}: records were removed`);
    }
  }

  private async peek(): Promise<StoredCheckpoint | undefined> {
    if (this.buffered.length === 0 && !this.exhausted) {
      this.buffered = await AuditCheckpointStore.page(this.db, this.after, PAGE);
      this.exhausted = this.buffered.length < PAGE;
      this.after = this.buffered.at(-1)?.treeSize ?? this.after;
    }
    return this.buffered[0];
  }
}

/**
 * pg reads jsonb numbers into doubles, so `9007199254740993` arrives as `…992` and would hash like
 * the original; jsonb compares numbers exactly, so the database itself says whether what was hashed
 * is what is stored.
 */
async function checkExactDetails(db: Queryable, hashed: readonly { seq: number; text: string }[]): Promise<void> {
  if (hashed.length === 0) {
    return;
  }
  const [inexact] = (await db.query(
    `SELECT stored.seq FROM unnest($1::bigint[], $2::text[]) AS hashed (seq, details)
       JOIN audit_log stored ON stored.seq = hashed.seq
      WHERE stored.details <> hashed.details::jsonb
      ORDER BY stored.seq LIMIT 1`,
    [hashed.map((h) => h.seq), hashed.map((h) => h.text)],
  )) as { seq: string }[];
  if (inexact !== undefined) {
    throw new Tampered('content-mismatch', Number(inexact.seq), `record ${inexact.seq} does not match its leaf: it was modified after it was sequenced`);
  }
}

/** Every subtree node the records complete must be stored with the recomputed hash. */
async function checkStoredNodes(db: Queryable, recomputed: readonly TreeNode[]): Promise<void> {
  const stored = await AuditTreeStore.nodes(db, recomputed);
  for (const node of recomputed) {
    const hash = stored.get(nodeKey(node));
    if (hash === undefined || !hash.equals(node.hash)) {
      throw new Tampered('node-mismatch', null, `stored tree node (level ${node.level}, index ${node.index}) does not match the records`);
    }
  }
}
