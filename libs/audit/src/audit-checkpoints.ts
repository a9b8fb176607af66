import { SecretBytes } from '@rackseal/config';
import { type MasterKeyInput, openEnvelope, type SealedColumn, sealEnvelope } from '@rackseal/envelope';
import type { TreeHead } from './audit-tree-store';
import type { Queryable } from './queryable';
import {
  type AuditSigningKey,
  ed25519KeyId,
  ed25519PublicKeyOf,
  formatVerifierKey,
  generateAuditSigningKey,
  keyIdHex,
  type NoteSigner,
  signCheckpoint,
} from './tlog';

/** A stored checkpoint: the signed note and what it commits to. */
export interface StoredCheckpoint {
  /** The note's first line (C2SP tlog-checkpoint): the log's identity when it was signed. */
  readonly origin: string;
  readonly treeSize: number;
  readonly rootHash: Buffer;
  readonly signedAt: Date;
  readonly keyId: string;
  readonly note: string;
}

/** A key that signed checkpoints, public half only. */
export interface StoredSigningKey {
  readonly keyId: string;
  readonly name: string;
  readonly publicKey: Buffer;
  readonly verifierKey: string;
  readonly createdAt: Date;
}

export interface CheckpointSettings {
  /** The checkpoint origin line and the signing key's name. */
  readonly origin: string;
  /** The process's master keys (or, in tests, a bare env key). */
  readonly masterKey: MasterKeyInput;
  /** An Ed25519 seed from config; null: generate one and store it sealed under the master key. */
  readonly signingKeySeed: SecretBytes | null;
}

interface CheckpointRow {
  tree_size: string;
  root_hash: Buffer;
  signed_at: Date;
  key_id: string;
  note: string;
}

interface KeyRow {
  key_id: string;
  name: string;
  public_key: Buffer;
  sealed_private_key: Buffer | null;
  created_at: Date;
}

// RFC 8410 §7: the PKCS#8 DER of an Ed25519 private key is this prefix followed by the 32-byte seed.
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Envelope context of a sealed signing key: binds the blob to its row (libs/envelope). */
const sealContext = (keyId: string): string => `audit-signing-key:${keyId}`;

const toCheckpoint = (r: CheckpointRow): StoredCheckpoint => ({
  origin: r.note.slice(0, Math.max(0, r.note.indexOf('\n'))),
  treeSize: Number(r.tree_size),
  rootHash: r.root_hash,
  signedAt: r.signed_at,
  keyId: r.key_id,
  note: r.note,
});

/**
 * The one owner of `audit_checkpoints` and `audit_signing_keys` (docs/architecture.md §9): every
 * checkpoint ever signed and every key that ever signed one. Each function takes the connection to
 * run on.
 */
export const AuditCheckpointStore = {
  async latest(db: Queryable): Promise<StoredCheckpoint | undefined> {
    const [row] = (await db.query(
      'SELECT tree_size, root_hash, signed_at, key_id, note FROM audit_checkpoints ORDER BY tree_size DESC LIMIT 1',
    )) as CheckpointRow[];
    return row === undefined ? undefined : toCheckpoint(row);
  },

  async ofSize(db: Queryable, treeSize: number): Promise<StoredCheckpoint | undefined> {
    const [row] = (await db.query('SELECT tree_size, root_hash, signed_at, key_id, note FROM audit_checkpoints WHERE tree_size = $1', [
      treeSize,
    ])) as CheckpointRow[];
    return row === undefined ? undefined : toCheckpoint(row);
  },

  /** Checkpoints with a tree size above `after`, smallest first, at most `limit`: the verifier pages through them. */
  async page(db: Queryable, after: number, limit: number): Promise<StoredCheckpoint[]> {
    const rows = (await db.query(
      'SELECT tree_size, root_hash, signed_at, key_id, note FROM audit_checkpoints WHERE tree_size > $1 ORDER BY tree_size LIMIT $2',
      [after, limit],
    )) as CheckpointRow[];
    return rows.map(toCheckpoint);
  },

  /** Keeps a signed checkpoint; a second one of the same size (a sequencer that restarted) is ignored. */
  async insert(db: Queryable, checkpoint: StoredCheckpoint): Promise<void> {
    await db.query(
      `INSERT INTO audit_checkpoints (tree_size, root_hash, signed_at, key_id, note) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (tree_size) DO NOTHING`,
      [checkpoint.treeSize, checkpoint.rootHash, checkpoint.signedAt, checkpoint.keyId, checkpoint.note],
    );
  },

  async publicKeys(db: Queryable): Promise<StoredSigningKey[]> {
    const rows = (await db.query('SELECT key_id, name, public_key, created_at FROM audit_signing_keys ORDER BY created_at, key_id')) as KeyRow[];
    return rows.map((r) => ({
      keyId: r.key_id,
      name: r.name,
      publicKey: r.public_key,
      verifierKey: formatVerifierKey(r.name, r.public_key),
      createdAt: r.created_at,
    }));
  },

  /** The newest key named `name` whose private half is stored (sealed). */
  async newestSealedKey(db: Queryable, name: string): Promise<{ keyId: string; sealed: Buffer } | undefined> {
    const [row] = (await db.query(
      `SELECT key_id, sealed_private_key FROM audit_signing_keys
        WHERE name = $1 AND sealed_private_key IS NOT NULL ORDER BY created_at DESC, key_id LIMIT 1`,
      [name],
    )) as KeyRow[];
    return row === undefined ? undefined : { keyId: row.key_id, sealed: row.sealed_private_key! };
  },

  async insertKey(db: Queryable, key: { keyId: string; name: string; publicKey: Buffer; sealed: Buffer | null }): Promise<void> {
    await db.query(
      `INSERT INTO audit_signing_keys (key_id, name, public_key, sealed_private_key) VALUES ($1, $2, $3, $4)
       ON CONFLICT DO NOTHING`,
      [key.keyId, key.name, key.publicKey, key.sealed],
    );
  },
};

/**
 * The sealed private halves of `audit_signing_keys`, as a master-key rotation re-wraps them
 * (libs/envelope SealedColumn): the one UPDATE the table allows (migration 1765000000000) replaces a
 * sealed key by its re-wrap; bytes 2..9 of a blob (SQL substring is 1-based) are its KEK ID.
 */
export const AUDIT_SEALED_COLUMNS: readonly SealedColumn[] = [
  {
    name: 'audit_signing_keys.sealed_private_key',
    async pendingPage(db, kekId, after, limit) {
      const rows = (await db.query(
        `SELECT key_id, sealed_private_key FROM audit_signing_keys
          WHERE sealed_private_key IS NOT NULL AND substring(sealed_private_key from 2 for 8) <> $1 AND ($2::text IS NULL OR key_id > $2)
          ORDER BY key_id LIMIT $3 FOR UPDATE`,
        [kekId, after ?? null, limit],
      )) as KeyRow[];
      return rows.map((r) => ({ key: r.key_id, blob: r.sealed_private_key!, context: sealContext(r.key_id) }));
    },
    async replace(db, key, previous, blob) {
      const result = await db.query(
        'UPDATE audit_signing_keys SET sealed_private_key = $3 WHERE key_id = $1 AND sealed_private_key = $2 RETURNING key_id',
        [key, previous, blob],
      );
      return Array.isArray(result) && Array.isArray(result[0]) && result[0].length === 1;
    },
    async countPending(db, kekId) {
      const [row] = (await db.query(
        'SELECT count(*)::int AS n FROM audit_signing_keys WHERE sealed_private_key IS NOT NULL AND substring(sealed_private_key from 2 for 8) <> $1',
        [kekId],
      )) as { n: number }[];
      return row!.n;
    },
  },
];

/**
 * Signs checkpoints over the tree head (C2SP tlog-checkpoint in an Ed25519 signed note). The private
 * key is generated on first use and stored envelope-encrypted under the master key — only the
 * sequencer, which holds the sequencer lock, signs, so two processes never race to create it — or
 * comes from config and is never stored (its public half is, so verifiers find it).
 */
export class CheckpointSigner {
  private signer: (NoteSigner & { keyId: string }) | undefined;
  private lastSignedSize: number | undefined;

  constructor(private readonly settings: CheckpointSettings) {}

  /**
   * Opens (or, on a new deployment, creates) the signing key before the sequencer integrates
   * anything: a key that does not open (another master key) must stop the sequencer before a batch
   * takes seqs that no checkpoint would then cover (docs/decisions.md, "A sequencer that cannot sign").
   */
  async openSigningKey(db: Queryable): Promise<void> {
    await this.signingKey(db);
  }

  /** Signs and stores a checkpoint of `head` unless one of that size or larger exists; true when it signed. */
  async signIfGrown(db: Queryable, head: TreeHead): Promise<boolean> {
    this.lastSignedSize ??= (await AuditCheckpointStore.latest(db))?.treeSize ?? -1;
    if (head.size <= this.lastSignedSize) {
      return false;
    }
    const signer = await this.signingKey(db);
    const note = signCheckpoint({ origin: this.settings.origin, size: head.size, rootHash: head.root, time: head.updatedAt }, signer);
    await AuditCheckpointStore.insert(db, { origin: this.settings.origin, treeSize: head.size, rootHash: head.root, signedAt: head.updatedAt, keyId: signer.keyId, note });
    this.lastSignedSize = head.size;
    return true;
  }

  /** The key that signs from now on: the configured one, else the newest stored one, else a new one. */
  private async signingKey(db: Queryable): Promise<NoteSigner & { keyId: string }> {
    if (this.signer !== undefined) {
      return this.signer;
    }
    const { origin, masterKey, signingKeySeed } = this.settings;
    if (signingKeySeed !== null) {
      const privateKey = new SecretBytes(Buffer.concat([ED25519_PKCS8_PREFIX, signingKeySeed.reveal()]));
      const publicKey = ed25519PublicKeyOf(privateKey);
      const keyId = keyIdHex(ed25519KeyId(origin, publicKey));
      await AuditCheckpointStore.insertKey(db, { keyId, name: origin, publicKey, sealed: null });
      this.signer = { name: origin, privateKey, keyId };
      return this.signer;
    }
    const stored = await AuditCheckpointStore.newestSealedKey(db, origin);
    if (stored !== undefined) {
      this.signer = { name: origin, privateKey: openEnvelope(masterKey, sealContext(stored.keyId), stored.sealed), keyId: stored.keyId };
      return this.signer;
    }
    const fresh: AuditSigningKey = generateAuditSigningKey(origin);
    const sealed = sealEnvelope(masterKey, sealContext(fresh.keyId), fresh.privateKey);
    await AuditCheckpointStore.insertKey(db, { keyId: fresh.keyId, name: origin, publicKey: fresh.publicKey, sealed });
    this.signer = { name: origin, privateKey: fresh.privateKey, keyId: fresh.keyId };
    return this.signer;
  }
}
