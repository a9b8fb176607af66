import { AuditLog, type AuditEntry, SEQUENCER_LOCK_KEY, ed25519KeyId, ed25519PublicKeyOf, keyIdHex, openCheckpoint } from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config';
import { openEnvelope } from '@rackseal/envelope';
import { SystemClock } from '@rackseal/platform';
import { randomBytes } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { logShape } from './support/audit-tree';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { type LogLine, type RunningProcess, startApp } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testEnv } from './support/test-config';
import { pollUntil } from './support/wait';

// The built worker's audit sequencer under faults (issue 11): killed mid-backlog, racing a second
// worker for the sequencer lock, and signing with a key it generated, could not open, or was given.

const HOLDS_LOCK = 'audit sequencer: this process holds the sequencer lock';
const ORIGIN = 'rackseal.local/audit';

const entry = (i: number): AuditEntry => ({ actor: 'system:test', action: 'test.event', subject: `machine:${i}`, outcome: 'success', details: { i } });

describe('audit sequencer in the built worker, under faults (PostgreSQL)', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let prefix: TestQueuePrefix;
  let audit: AuditLog;
  const procs: RunningProcess[] = [];
  const masterKeyHex = randomBytes(32).toString('hex');

  beforeEach(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url);
    prefix = createTestQueuePrefix();
    audit = new AuditLog(ds, new SystemClock());
  });

  afterEach(async () => {
    await Promise.all(procs.splice(0).map((p) => p.stop('SIGKILL')));
    await ds.destroy();
    await prefix.clear();
    await db.drop();
  });

  function startWorker(extra: NodeJS.ProcessEnv = {}): RunningProcess {
    const proc = startApp(
      'worker',
      testEnv(db, prefix.prefix, { LOG_LEVEL: 'info', RACKSEAL_MASTER_KEY: masterKeyHex, AUDIT_MAX_MERGE_DELAY_MS: '200', ...extra }),
    );
    procs.push(proc);
    return proc;
  }

  const holdsLock = (line: LogLine): boolean => line.msg === HOLDS_LOCK;
  const headSize = async (): Promise<number> => Number(((await ds.query('SELECT size FROM audit_tree_head')) as { size: string }[])[0]!.size);
  const checkpointKeys = async (): Promise<{ tree_size: string; key_id: string }[]> =>
    (await ds.query('SELECT tree_size, key_id FROM audit_checkpoints ORDER BY tree_size')) as { tree_size: string; key_id: string }[];

  /** Sessions of this database holding the sequencer's advisory lock (two-key form: classid, objid, objsubid 2). */
  const sequencerLocks = () =>
    ds.query(
      `SELECT count(*)::int AS n FROM pg_locks
        WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND classid = $1 AND objid = $2 AND objsubid = 2`,
      [...SEQUENCER_LOCK_KEY],
    );

  async function appendMany(from: number, n: number): Promise<void> {
    for (let i = from; i < from + n; i += 1) {
      await audit.append(entry(i));
    }
  }

  async function waitSequenced(total: number, timeoutMs = 30000): Promise<void> {
    const shape = await pollUntil(() => logShape(ds), (s) => s.total === total && s.pending === 0, timeoutMs);
    expect(shape).toMatchObject({ total, pending: 0 });
  }

  it('loses no record and sequences none twice when killed with -9 in the middle of a large backlog', async () => {
    const total = 30_000;
    // What AuditLog.append writes, 30,000 times (six full batches) in one statement: whole-millisecond recorded_at, canonical details.
    await ds.query(
      `INSERT INTO audit_log (recorded_at, actor, action, subject, outcome, details)
       SELECT timestamptz '2026-12-01 00:00:00.123+00' + g * interval '1 millisecond', 'system:load', 'test.backlog',
              'machine:' || g, 'success', jsonb_build_object('i', g)
         FROM generate_series(1, $1::int) AS g`,
      [total],
    );
    expect(await logShape(ds)).toMatchObject({ total, pending: total });

    const first = startWorker();
    await first.waitForLog(holdsLock);
    const midway = await pollUntil(headSize, (size) => size > 0, 30000, 20);
    expect(midway).toBeGreaterThan(0);
    expect(midway).toBeLessThan(total);
    await first.stop('SIGKILL');
    // What the killed sequencer committed is whole batches: seqs, nodes and head together.
    const afterKill = await logShape(ds);
    expect(afterKill.total - afterKill.pending).toBe(await headSize());
    expect(afterKill.maxSeq ?? 0).toBe(await headSize());

    const second = startWorker();
    await second.waitForLog(holdsLock);
    await waitSequenced(total, 45000);
    expect(await logShape(ds)).toEqual({ total, pending: 0, distinctSeqs: total, minSeq: 1, maxSeq: total });
    // Append order is tree order: seq n is the n-th id.
    expect(await ds.query('SELECT count(*)::int AS n FROM audit_log WHERE seq <> id - (SELECT min(id) FROM audit_log) + 1')).toEqual([{ n: 0 }]);
    await pollUntil(async () => (await audit.latestCheckpoint().catch(() => undefined))?.treeSize, (size) => size === total);
    expect(await audit.verify()).toMatchObject({ ok: true, records: total, pending: 0 });
  }, 120000);

  it('forms one tree with two workers: one holds the lock, the other takes over when it is killed', async () => {
    const workers = [startWorker(), startWorker()];
    const holder = await Promise.any(workers.map(async (w) => (await w.waitForLog(holdsLock), w)));
    const standby = workers.find((w) => w !== holder)!;
    await appendMany(1, 20);
    await waitSequenced(20);
    // Both stayed up, only one ever took the lock.
    expect(standby.logs.filter(holdsLock)).toEqual([]);
    expect(holder.logs.filter(holdsLock)).toHaveLength(1);
    expect(await sequencerLocks()).toEqual([{ n: 1 }]);

    await holder.stop('SIGKILL');
    await appendMany(21, 20);
    await standby.waitForLog(holdsLock);
    await waitSequenced(40);
    expect(await logShape(ds)).toEqual({ total: 40, pending: 0, distinctSeqs: 40, minSeq: 1, maxSeq: 40 });
    expect((await audit.list({ limit: 100 })).map((r) => [r.subject, r.seq])).toEqual(Array.from({ length: 40 }, (_, i) => [`machine:${i + 1}`, i + 1]));
    await pollUntil(async () => (await audit.latestCheckpoint().catch(() => undefined))?.treeSize, (size) => size === 40);
    // One key for the whole tree: the standby opened the key the first worker generated.
    expect(new Set((await checkpointKeys()).map((c) => c.key_id)).size).toBe(1);
    expect(await audit.verify()).toMatchObject({ ok: true, records: 40 });
  });

  it('stores a generated signing key sealed, never signs with another master key, and signs with a configured key', async () => {
    const first = startWorker();
    await first.waitForLog(holdsLock);
    await appendMany(1, 3);
    await waitSequenced(3);
    await pollUntil(async () => (await audit.latestCheckpoint().catch(() => undefined))?.treeSize, (size) => size === 3);
    // The three appends may land in one batch or several (batches run on a 200 ms cadence): whatever
    // was signed up to size 3 is what must not change while the wrong-key worker runs.
    const signedBefore = await checkpointKeys();
    expect(signedBefore.at(-1)?.tree_size).toBe('3');

    const [key] = (await ds.query('SELECT key_id, name, public_key, sealed_private_key FROM audit_signing_keys')) as {
      key_id: string;
      name: string;
      public_key: Buffer;
      sealed_private_key: Buffer;
    }[];
    expect(await ds.query('SELECT count(*)::int AS n FROM audit_signing_keys')).toEqual([{ n: 1 }]);
    expect(key!.name).toBe(ORIGIN);
    // The private key opens only with the master key and the row's context, and its bytes are not in the row.
    const privateKey = openEnvelope(new SecretBytes(Buffer.from(masterKeyHex, 'hex')), `audit-signing-key:${key!.key_id}`, key!.sealed_private_key);
    const pkcs8 = privateKey.reveal();
    const seed = pkcs8.subarray(pkcs8.length - 32);
    expect(ed25519PublicKeyOf(privateKey)).toEqual(key!.public_key);
    expect(keyIdHex(ed25519KeyId(ORIGIN, key!.public_key))).toBe(key!.key_id);
    const stored = Buffer.concat([key!.sealed_private_key, Buffer.from(key!.key_id), key!.public_key]);
    expect(stored.includes(seed)).toBe(false);
    expect(stored.includes(pkcs8)).toBe(false);
    const [vkey] = await audit.publicKeys();
    expect(openCheckpoint((await audit.latestCheckpoint()).note, vkey!.verifierKey)).toMatchObject({ size: 3 });
    await first.stop('SIGKILL');

    // Another deployment's master key cannot open the stored key: it logs the refusal, again on every
    // retry, and signs nothing — no checkpoint, no new key.
    const otherMasterKey = randomBytes(32).toString('hex');
    await appendMany(4, 1);
    const wrongKey = startWorker({ RACKSEAL_MASTER_KEY: otherMasterKey });
    const sealedElsewhere = (l: LogLine) => typeof l.msg === 'string' && l.msg.includes('sealed under another master key');
    const error = await wrongKey.waitForLog(sealedElsewhere);
    expect(error.msg).toMatch(/^audit sequencer: the envelope was sealed under another master key .*; retrying in \d+ ms$/);
    await pollUntil(async () => wrongKey.logs.filter(sealedElsewhere).length, (n) => n >= 2, 10000);
    expect(wrongKey.logs.filter(sealedElsewhere).length).toBeGreaterThanOrEqual(2);
    expect(wrongKey.stdout + wrongKey.stderr).not.toContain(otherMasterKey);
    expect(wrongKey.stdout + wrongKey.stderr).not.toContain(seed.toString('hex'));
    // The first worker signed the empty tree when it took the lock, then up to the tree of 3, all with
    // its key; nothing was signed since.
    expect(signedBefore[0]).toEqual({ tree_size: '0', key_id: key!.key_id });
    expect(signedBefore.every((c) => c.key_id === key!.key_id)).toBe(true);
    expect(await checkpointKeys()).toEqual(signedBefore);
    expect(await ds.query('SELECT count(*)::int AS n FROM audit_signing_keys')).toEqual([{ n: 1 }]);
    // Nor does it integrate: record 4 waits pending (visible to readiness), not sequenced into a tree
    // that no checkpoint covers, where the lag would read 0.
    expect(await headSize()).toBe(3);
    expect(await logShape(ds)).toMatchObject({ total: 4, pending: 1, maxSeq: 3 });
    expect(await audit.sequencerStatus()).toMatchObject({ pending: 1, treeSize: 3 });
    await wrongKey.stop('SIGKILL');

    // A key from config signs from now on; only its public half is stored.
    const configuredSeed = randomBytes(32);
    const configured = startWorker({ RACKSEAL_MASTER_KEY: otherMasterKey, AUDIT_SIGNING_KEY: configuredSeed.toString('hex') });
    await configured.waitForLog(holdsLock);
    await appendMany(5, 2);
    await waitSequenced(6);
    const latest = await pollUntil(() => audit.latestCheckpoint().catch(() => undefined), (c) => c?.treeSize === 6);
    const keys = (await ds.query('SELECT key_id, public_key, sealed_private_key FROM audit_signing_keys ORDER BY created_at')) as {
      key_id: string;
      public_key: Buffer;
      sealed_private_key: Buffer | null;
    }[];
    expect(keys).toHaveLength(2);
    const configuredRow = keys.find((k) => k.key_id !== key!.key_id)!;
    expect(configuredRow.sealed_private_key).toBeNull();
    expect(latest!.keyId).toBe(configuredRow.key_id);
    const configuredPrivate = new SecretBytes(Buffer.concat([pkcs8.subarray(0, pkcs8.length - 32), configuredSeed]));
    expect(configuredRow.public_key).toEqual(ed25519PublicKeyOf(configuredPrivate));
    const configuredVkey = (await audit.publicKeys()).find((k) => k.keyId === configuredRow.key_id)!.verifierKey;
    expect(openCheckpoint(latest!.note, configuredVkey)).toMatchObject({ size: 6 });
    expect(() => openCheckpoint(latest!.note, vkey!.verifierKey)).toThrow();
    expect(configured.stdout + configured.stderr).not.toContain(configuredSeed.toString('hex'));
    // Everything after the tree of 3 is signed by the configured key (how many checkpoints depends on batch timing).
    const signed = await checkpointKeys();
    expect(signed.slice(0, signedBefore.length)).toEqual(signedBefore);
    const after = signed.slice(signedBefore.length);
    expect(after.map((c) => c.key_id)).toEqual(after.map(() => configuredRow.key_id));
    expect(signed.at(-1)!.tree_size).toBe('6');
    expect(await audit.verify()).toMatchObject({ ok: true, records: 6, checkpoints: signed.length });
  });
});
