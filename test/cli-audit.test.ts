/**
 * `rackseal audit` on the transparency log (issue 11), against a real control plane and database:
 * checkpoints verified and saved by the CLI, inclusion proofs checked by the CLI, `verify --since`
 * catching a rewrite that leaves the database self-consistent, in both the database and --server
 * modes. The worker's sequencer is driven in-process (drainOnce) with the control plane's master key.
 */
import {
  AuditLog,
  AuditSequencer,
  AuditTreeStore,
  CheckpointSigner,
  generateAuditSigningKey,
  openCheckpoint,
  rootOfBorder,
  type AuditEntry,
} from '@rackseal/audit';
import type { RacksealConfig } from '@rackseal/config';
import { SystemClock } from '@rackseal/platform';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DataSource } from 'typeorm';
import { runRacksealCli, type CliRun } from './support/cli-runner';
import { asSuperuser, createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { type RunningProcess, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig, testEnv } from './support/test-config';

const entry = (i: number): AuditEntry => ({ actor: 'system:test', action: 'test.event', subject: `machine:${i}`, outcome: 'success', details: { i } });
const quiet = { log: () => undefined, error: () => undefined };

describe('rackseal audit on the transparency log', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let prefix: TestQueuePrefix;
  let cp: { proc: RunningProcess; baseUrl: string };
  let config: RacksealConfig;
  let token: string;
  let dir: string;
  let audit: AuditLog;

  /** A sequencer like the worker's: the control plane's origin and master key, so it signs with the log's stored key. */
  const sequence = async (): Promise<void> => {
    const signer = new CheckpointSigner({ origin: config.audit.origin, masterKey: config.masterKey.key!, signingKeySeed: null });
    const sequencer = new AuditSequencer(ds, signer, new SystemClock(), { maxMergeDelayMs: 1000 }, quiet);
    try {
      await sequencer.drainOnce();
    } finally {
      await sequencer.stop();
    }
  };
  const appendAndSequence = async (from: number, to: number): Promise<void> => {
    for (let i = from; i <= to; i += 1) {
      await audit.append(entry(i));
    }
    await sequence();
  };
  const server = (...args: string[]): CliRun => runRacksealCli(['audit', ...args], { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: token } });
  const direct = (...args: string[]): CliRun => runRacksealCli(['audit', ...args], { env: { DATABASE_URL: db.url } });
  const treeSize = async (): Promise<number> => (await AuditTreeStore.head(ds)).size;
  const latestNote = async (): Promise<string> => (await audit.latestCheckpoint()).note;

  beforeAll(async () => {
    db = await createTestDatabase();
    ds = await openDataSource(db.url);
    prefix = createTestQueuePrefix();
    dir = await mkdtemp(join(tmpdir(), 'rackseal-cli-audit-'));
    config = testConfig(db, prefix.prefix);
    audit = new AuditLog(ds, new SystemClock());
    const bootstrap = runRacksealCli(['token', 'create', '--name', 'auditor', '--scope', 'audit:read'], { env: { DATABASE_URL: db.url } });
    expect(bootstrap.status).toBe(0);
    token = bootstrap.stdout.trim();
    await appendAndSequence(2, 5);
    cp = await startControlPlane(testEnv(db, prefix.prefix));
  });

  afterAll(async () => {
    await cp?.proc.stop();
    await ds.destroy();
    await db.drop();
    await prefix.clear();
    await rm(dir, { recursive: true, force: true });
  });

  it('public-key prints the log\'s verifier key, the one its checkpoints verify with', async () => {
    const run = server('public-key');
    expect([run.status, run.stderr]).toEqual([0, '']);
    const [stored] = await audit.publicKeys();
    expect(run.stdout).toBe(`${stored!.verifierKey}\n`);
    expect(openCheckpoint(await latestNote(), run.stdout.trim()).size).toBe(5);
    expect(JSON.parse(server('public-key', '--json').stdout)).toEqual([expect.objectContaining({ keyId: stored!.keyId, verifierKey: stored!.verifierKey })]);
  });

  it('checkpoint verifies and prints the latest checkpoint; --save writes the signed note exactly (0644, no temporary left)', async () => {
    const stored = await audit.latestCheckpoint();
    const run = server('checkpoint');
    expect([run.status, run.stderr]).toEqual([0, '']);
    expect(run.stdout).toBe(
      [
        `origin  ${config.audit.origin}`,
        'size    5',
        `root    ${stored.rootHash.toString('hex')}`,
        `time    ${stored.signedAt.toISOString()}`,
        `key id  ${stored.keyId} (signature verified with the log's public keys (GET /v1/audit/public-keys))`,
        '',
      ].join('\n'),
    );
    expect(JSON.parse(server('checkpoint', '--json').stdout)).toEqual({
      origin: config.audit.origin,
      treeSize: 5,
      rootHash: stored.rootHash.toString('hex'),
      signedAt: stored.signedAt.toISOString(),
      keyId: stored.keyId,
      note: stored.note,
    });

    const file = join(dir, 'saved.note');
    const save = server('checkpoint', '--save', file);
    expect([save.status, save.stderr]).toEqual([0, `saved the checkpoint of size 5 to ${JSON.stringify(file)}\n`]);
    expect(await readFile(file, 'utf8')).toBe(stored.note);
    expect((await stat(file)).mode & 0o777).toBe(0o644);
    expect(await readdir(dir)).toEqual(['saved.note']);
    expect(server('checkpoint', '--save', file).stderr).toBe(`${JSON.stringify(file)} already holds this checkpoint\n`);
  });

  it('checkpoint --key uses the pinned key only: another key is refused (exit 1), the log\'s key passes, a bad one is usage (exit 2)', async () => {
    const other = generateAuditSigningKey(config.audit.origin);
    const refused = server('checkpoint', '--key', other.verifierKey);
    expect([refused.status, refused.stdout]).toEqual([1, '']);
    const [stored] = await audit.publicKeys();
    expect(refused.stderr).toBe(
      `rackseal: the log's latest checkpoint is signed by ${config.audit.origin}+${stored!.keyId}, none of the --key verifier key\n`,
    );
    // verify --since with a pinned key: the saved note must be signed by it, in both modes.
    const saved = join(dir, 'saved.note');
    for (const run of [direct('verify', '--since', saved, '--key', other.verifierKey), server('verify', '--server', '--since', saved, '--key', other.verifierKey)]) {
      expect([run.status, run.stdout]).toEqual([1, '']);
      expect(run.stderr).toBe(
        `audit log broken: checkpoint-signature: your saved checkpoint is signed by ${config.audit.origin}+${stored!.keyId}, none of the --key verifier key\n`,
      );
    }
    // A saved note whose text was changed (size 5 → 4) no longer verifies: exit 1, in both modes.
    const forged = join(dir, 'forged.note');
    await writeFile(forged, (await readFile(saved, 'utf8')).replace('\n5\n', '\n4\n'));
    for (const run of [direct('verify', '--since', forged), server('verify', '--server', '--since', forged)]) {
      expect([run.status, run.stdout]).toEqual([1, '']);
      expect(run.stderr).toMatch(/^audit log broken: checkpoint-signature: (the saved checkpoint|your saved checkpoint) does not verify with key .*does not verify: the note was modified or not signed by that key\n$/);
    }
    await rm(forged);
    const keyFile = join(dir, 'log.vkey');
    await writeFile(keyFile, `${stored!.verifierKey}\n`);
    const pinned = server('checkpoint', '--key', keyFile);
    expect(pinned.status).toBe(0);
    expect(pinned.stdout).toContain(`key id  ${stored!.keyId} (signature verified with the --key verifier key)`);
    // What `audit public-key > FILE` writes once the log has two keys: refused by its line count, not as bad base64.
    await writeFile(keyFile, `${stored!.verifierKey}\n${other.verifierKey}\n`);
    const twoKeys = server('checkpoint', '--key', keyFile);
    expect([twoKeys.status, twoKeys.stdout]).toEqual([2, '']);
    expect(twoKeys.stderr).toBe(
      `rackseal: --key: the file ${JSON.stringify(keyFile)} holds 2 lines; it must hold one verifier key (rackseal audit public-key prints every key the log has used, oldest first: keep the one to pin)\n`,
    );
    const bad = server('checkpoint', '--key', 'not-a-key');
    expect([bad.status, bad.stdout]).toEqual([2, '']);
    expect(bad.stderr).toMatch(/^rackseal: --key: the --key value \(no such file either\) is not a verifier key <name>\+<key id>\+<base64 key>: /);
    await rm(keyFile);
  });

  it('verify recomputes the tree (database and --server) and, with --since, proves the log extends the saved checkpoint', async () => {
    const saved = join(dir, 'saved.note');
    await appendAndSequence(6, 8);
    const root = (await audit.latestCheckpoint()).rootHash.toString('hex');
    const savedRoot = openCheckpoint(await readFile(saved, 'utf8'), (await audit.publicKeys())[0]!.verifierKey).rootHash.toString('hex');

    const plain = direct('verify');
    expect([plain.status, plain.stderr]).toEqual([0, '']);
    expect(plain.stdout).toBe(`audit log intact: 8 records (0 pending), root ${root}, 2 checkpoints checked\n`);
    const since = direct('verify', '--since', saved);
    expect([since.status, since.stderr]).toEqual([0, '']);
    expect(since.stdout).toBe(`${plain.stdout}it extends your saved checkpoint of size 5 (root ${savedRoot})\n`);
    expect(JSON.parse(direct('verify', '--since', saved, '--json').stdout)).toEqual({
      ok: true, records: 8, pending: 0, rootHash: root, checkpoints: 2, since: { treeSize: 5, rootHash: savedRoot },
    });

    const viaServer = server('verify', '--server', '--since', saved);
    expect([viaServer.status, viaServer.stderr]).toEqual([0, '']);
    expect(viaServer.stdout).toBe(
      `${plain.stdout}it extends your saved checkpoint of size 5 (root ${savedRoot}): checked here with a consistency proof to the signed checkpoint of size 8\n`,
    );
    const pinned = server('verify', '--server', '--since', saved, '--key', (await audit.publicKeys())[0]!.verifierKey);
    expect(pinned.status).toBe(0);

    // --save over the saved checkpoint replaces it only because the new one extends it.
    const copy = join(dir, 'copy.note');
    await writeFile(copy, await readFile(saved));
    const replaced = server('checkpoint', '--save', copy);
    expect([replaced.status, replaced.stderr]).toEqual([0, `replaced the checkpoint of size 5 in ${JSON.stringify(copy)}: the log's checkpoint of size 8 extends it\n`]);
    expect(await readFile(copy, 'utf8')).toBe(await latestNote());
    await rm(copy);
  });

  it('verify names a record moved by one microsecond (exit 1) and passes once it is back', async () => {
    await asSuperuser(ds, `UPDATE audit_log SET recorded_at = recorded_at + interval '1 microsecond' WHERE seq = 3`);
    const run = direct('verify');
    expect([run.status, run.stdout]).toEqual([1, '']);
    expect(run.stderr).toBe('audit log broken at record 3: content-mismatch: record 3 does not match its leaf: it was modified, moved or inserted after it was sequenced\n');
    expect(JSON.parse(direct('verify', '--json').stdout)).toMatchObject({ ok: false, problem: { kind: 'content-mismatch', seq: 3 } });
    await asSuperuser(ds, `UPDATE audit_log SET recorded_at = recorded_at - interval '1 microsecond' WHERE seq = 3`);
    expect(direct('verify').status).toBe(0);
  });

  it('prove checks every record of the log against the signed root, and an older signed size with --size', async () => {
    const size = await treeSize();
    const root = (await audit.latestCheckpoint()).rootHash.toString('hex');
    const keyId = (await audit.latestCheckpoint()).keyId;
    for (let seq = 1; seq <= size; seq += 1) {
      const run = server('prove', String(seq));
      expect([seq, run.status, run.stderr]).toEqual([seq, 0, '']);
      expect(run.stdout).toBe(`record ${seq} is in the log of size ${size} (root ${root}), checkpoint signed by key ${keyId}\n`);
    }
    const older = server('prove', '2', '--size', '5', '--json');
    expect(older.status).toBe(0);
    expect(JSON.parse(older.stdout)).toMatchObject({ ok: true, seq: 2, treeSize: 5, keyId, leafHash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const beyond = server('prove', String(size + 1));
    expect([beyond.status, beyond.stdout]).toEqual([2, '']);
    expect(beyond.stderr).toMatch(new RegExp(`^rackseal: audit prove: record ${size + 1} is not in the tree of size ${size}`));
    const unsigned = server('prove', '1', '--size', '4');
    expect([unsigned.status, unsigned.stderr]).toEqual([2, 'rackseal: audit prove: no checkpoint was signed at tree size 4; proofs are given for signed sizes only\n']);
    expect(server('prove', '0').status).toBe(2);
    expect(server('prove', 'x').stderr).toContain('seq must be a whole number');
  });

  it('prove fails (exit 1) when a stored node on the proof path was tampered, and passes once it is back', async () => {
    const [node] = (await ds.query('SELECT hash FROM audit_tree_nodes WHERE level = 0 AND idx = 1')) as { hash: Buffer }[];
    await asSuperuser(ds, `UPDATE audit_tree_nodes SET hash = decode(repeat('ab', 32), 'hex') WHERE level = 0 AND idx = 1`);
    const run = server('prove', '1');
    expect([run.status, run.stdout]).toEqual([1, '']);
    expect(run.stderr).toBe(
      `rackseal: record 1 is not proven in the log of size ${await treeSize()}: the inclusion proof for leaf 0 of ${await treeSize()} leads to another root (the record or the stored tree was changed)\n`,
    );
    await asSuperuser(ds, 'UPDATE audit_tree_nodes SET hash = $1 WHERE level = 0 AND idx = 1', [node!.hash]);
    expect(server('prove', '1').status).toBe(0);
  });

  it('refuses a --since or --save path that is missing, a directory, not a signed note or too large (exit 2, naming it)', async () => {
    const missing = join(dir, 'missing.note');
    const notNote = join(dir, 'not-a-note.txt');
    const huge = join(dir, 'huge.note');
    await writeFile(notNote, 'hello\n');
    await writeFile(huge, Buffer.alloc(128 * 1024 + 1, 0x61));
    const cases: [CliRun, string][] = [
      [direct('verify', '--since', missing), `rackseal: cannot read --since ${JSON.stringify(missing)}: ENOENT\n`],
      [direct('verify', '--since', dir), `rackseal: --since ${JSON.stringify(dir)} is a directory, not a saved checkpoint\n`],
      [
        server('verify', '--server', '--since', notNote),
        `rackseal: --since ${JSON.stringify(notNote)} is not a signed checkpoint (what rackseal audit checkpoint --save writes): the note has no blank line before its signatures\n`,
      ],
      [direct('verify', '--since', huge), `rackseal: cannot read --since ${JSON.stringify(huge)}: larger than 131072 bytes (the limit for it)\n`],
      [server('checkpoint', '--save', dir), `rackseal: --save ${JSON.stringify(dir)} is a directory, not a saved checkpoint\n`],
      [
        server('checkpoint', '--save', notNote),
        `rackseal: --save ${JSON.stringify(notNote)} is not a signed checkpoint (what rackseal audit checkpoint --save writes): the note has no blank line before its signatures\n`,
      ],
      [server('checkpoint', '--save', join(dir, 'no-such-dir', 'x.note')), `rackseal: cannot write --save ${JSON.stringify(join(dir, 'no-such-dir', 'x.note'))}: ENOENT\n`],
      [direct('verify', '--key', 'x'), 'rackseal: --key checks the --since checkpoint: give --since FILE too\n'],
    ];
    for (const [run, stderr] of cases) {
      expect([run.status, run.stdout, run.stderr]).toEqual([2, '', stderr]);
    }
    expect(await readFile(notNote, 'utf8')).toBe('hello\n');
    expect((await readdir(dir)).sort()).toEqual(['huge.note', 'not-a-note.txt', 'saved.note']);
  });

  it('verify --since catches a rewrite of everything after record k that leaves the database consistent (database and --server)', async () => {
    const saved = join(dir, 'saved.note');
    expect(server('checkpoint', '--save', saved).status).toBe(0);
    const savedNote = await readFile(saved, 'utf8');
    const size = await treeSize();
    const k = 3;
    // A superuser rewrites records k+1… and re-sequences them: nodes covering them, the head and the later checkpoints go too.
    const prefixRoot = rootOfBorder(await AuditTreeStore.border(ds, k));
    await asSuperuser(ds, `UPDATE audit_log SET seq = NULL, subject = 'forged:' || subject WHERE seq > $1`, [k]);
    await asSuperuser(ds, 'DELETE FROM audit_tree_nodes WHERE (idx + 1) * (1::bigint << level::int) > $1', [k]);
    await asSuperuser(ds, 'UPDATE audit_tree_head SET size = $1, root = $2', [k, prefixRoot]);
    await asSuperuser(ds, 'DELETE FROM audit_checkpoints WHERE tree_size > $1', [k]);
    await sequence();
    expect(await treeSize()).toBe(size);
    expect(await latestNote()).not.toBe(savedNote);

    // Without the saved checkpoint nothing inside the database shows it.
    expect(direct('verify').status).toBe(0);
    expect(server('verify', '--server').status).toBe(0);

    const broken = direct('verify', '--since', saved);
    expect([broken.status, broken.stdout]).toEqual([1, '']);
    expect(broken.stderr).toMatch(/^audit log broken: not-extending: the log does not extend your saved checkpoint: at size \d+ the records give root [0-9a-f]{64}, your checkpoint says [0-9a-f]{64} \(history was rewritten\)\n$/);
    expect(JSON.parse(direct('verify', '--since', saved, '--json').stdout)).toMatchObject({ ok: false, problem: { kind: 'not-extending', seq: null } });

    const viaServer = server('verify', '--server', '--since', saved);
    expect([viaServer.status, viaServer.stdout]).toEqual([1, '']);
    expect(viaServer.stderr).toMatch(
      new RegExp(`^audit log broken: not-extending: the log's latest checkpoint and your saved checkpoint both have ${size} records but different roots \\([0-9a-f]{64}, yours [0-9a-f]{64}\\): history was rewritten\\n$`),
    );
    expect(JSON.parse(server('verify', '--server', '--since', saved, '--json').stdout)).toMatchObject({ ok: false, problem: { kind: 'not-extending', seq: null } });

    // Grown past the saved size, the consistency proof is what fails.
    await appendAndSequence(100, 101);
    const grown = server('verify', '--server', '--since', saved);
    expect(grown.status).toBe(1);
    expect(grown.stderr).toMatch(new RegExp(`^audit log broken: not-extending: the log's checkpoint of size ${size + 2} does not extend your saved checkpoint of size ${size} \\(root [0-9a-f]{64}\\): `));

    // Nor does --save replace the saved checkpoint with the rewritten log's.
    const save = server('checkpoint', '--save', saved);
    expect(save.status).toBe(1);
    expect(save.stderr).toMatch(/^rackseal: the log's checkpoint of size \d+ does not extend your saved checkpoint/);
    expect(await readFile(saved, 'utf8')).toBe(savedNote);
  });

  it('verify exits 2 when the database cannot be reached', () => {
    const run = runRacksealCli(['audit', 'verify'], { env: { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nothing' } });
    expect([run.status, run.stderr]).toEqual([2, 'rackseal: PostgreSQL postgres@127.0.0.1:1/nothing: cannot connect: connect ECONNREFUSED 127.0.0.1:1\n']);
  });
});
