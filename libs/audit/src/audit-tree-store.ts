import type { Queryable } from './queryable';
import { borderIds, type NodeId, nodeKey, type TreeBorder, type TreeNode } from './tlog';

/** The committed tree: what the sequencer last integrated. */
export interface TreeHead {
  readonly size: number;
  readonly root: Buffer;
  readonly updatedAt: Date;
}

/**
 * The one owner of `audit_tree_head` and `audit_tree_nodes` (docs/architecture.md §9). Every
 * function takes the connection to run on, so the sequencer can write a batch's sequence numbers,
 * nodes and head in one transaction, and readers use any pooled connection.
 */
export const AuditTreeStore = {
  async head(db: Queryable, options: { forUpdate?: boolean } = {}): Promise<TreeHead> {
    const [row] = (await db.query(
      `SELECT size, root, updated_at FROM audit_tree_head WHERE id = 1${options.forUpdate === true ? ' FOR UPDATE' : ''}`,
    )) as { size: string; root: Buffer; updated_at: Date }[];
    if (row === undefined) {
      throw new Error('audit_tree_head is missing: the audit transparency-log migration has not run');
    }
    return { size: Number(row.size), root: row.root, updatedAt: row.updated_at };
  },

  /** The stored hashes of `ids`, keyed by nodeKey; a node that is absent is simply missing from the map. */
  async nodes(db: Queryable, ids: readonly NodeId[]): Promise<Map<string, Buffer>> {
    const found = new Map<string, Buffer>();
    if (ids.length === 0) {
      return found;
    }
    const rows = (await db.query(
      `SELECT n.level, n.idx, n.hash
         FROM unnest($1::smallint[], $2::bigint[]) AS wanted (level, idx)
         JOIN audit_tree_nodes n ON n.level = wanted.level AND n.idx = wanted.idx`,
      [ids.map((id) => id.level), ids.map((id) => id.index)],
    )) as { level: number; idx: string; hash: Buffer }[];
    for (const row of rows) {
      found.set(nodeKey({ level: row.level, index: Number(row.idx) }), row.hash);
    }
    return found;
  },

  /** The right border of a tree of `size` leaves: what appending to it needs (tlog/tree-append.ts). */
  async border(db: Queryable, size: number): Promise<TreeBorder> {
    const ids = borderIds(size);
    const stored = await AuditTreeStore.nodes(db, ids);
    const nodes = ids.map((id) => {
      const hash = stored.get(nodeKey(id));
      if (hash === undefined) {
        throw new Error(`audit tree node ${nodeKey(id)} is missing: the stored tree is damaged (run rackseal audit verify)`);
      }
      return hash;
    });
    return { size, nodes };
  },

  /** Level-0 hashes (leaf hashes) of leaves [begin, end), in order. */
  async leafHashes(db: Queryable, begin: number, end: number): Promise<{ index: number; hash: Buffer }[]> {
    const rows = (await db.query(`SELECT idx, hash FROM audit_tree_nodes WHERE level = 0 AND idx >= $1 AND idx < $2 ORDER BY idx`, [
      begin,
      end,
    ])) as { idx: string; hash: Buffer }[];
    return rows.map((r) => ({ index: Number(r.idx), hash: r.hash }));
  },

  async insertNodes(db: Queryable, nodes: readonly TreeNode[]): Promise<void> {
    if (nodes.length === 0) {
      return;
    }
    await db.query(
      `INSERT INTO audit_tree_nodes (level, idx, hash) SELECT * FROM unnest($1::smallint[], $2::bigint[], $3::bytea[])`,
      [nodes.map((n) => n.level), nodes.map((n) => n.index), nodes.map((n) => n.hash)],
    );
  },

  async setHead(db: Queryable, head: TreeHead): Promise<void> {
    await db.query('UPDATE audit_tree_head SET size = $1, root = $2, updated_at = $3 WHERE id = 1', [head.size, head.root, head.updatedAt]);
  },
};
