import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { AttestationRepository, nodeCredentialContext, registrationSecretContext } from '@rackseal/attestation';
import { AuditLog, CheckpointSigner } from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config';
import {
  EnvelopeKeyMismatchError,
  EnvMasterKey,
  type MasterKeyProvider,
  MasterKeys,
  openEnvelope,
  sealEnvelope,
} from '@rackseal/envelope';
import { Pkcs11MasterKey, Pkcs11Token, rotateMasterKey, SEALED_COLUMNS } from '@rackseal/master-keys';
import { SystemClock } from '@rackseal/platform';
import type { DataSource } from 'typeorm';
import { runRacksealCliAsync, spawnCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { dumpDatabase, renderings } from './support/secret-search';
import { createSoftHsmToken, type SoftHsmToken } from './support/softhsm';
import { pollUntil } from './support/wait';

/** One sealed row as the test put it there: where it lives, its context and the plaintext it must open to. */
interface Sealed {
  readonly column: string;
  readonly key: string;
  readonly context: string;
  readonly plaintext: Buffer;
}

interface Fixture {
  readonly db: TestDatabase;
  readonly ds: DataSource;
  readonly sealed: Sealed[];
}

const fixtures: Fixture[] = [];

/** Every sealed column of the schema with its rows' keys: read back as the test's oracle (plain SQL, the test's own). */
const READ_BACK: Record<string, string> = {
  'audit_signing_keys.sealed_private_key': 'SELECT key_id AS key, sealed_private_key AS blob FROM audit_signing_keys WHERE sealed_private_key IS NOT NULL',
  'attestation_registrations.secret_sealed': 'SELECT id::text AS key, secret_sealed AS blob FROM attestation_registrations',
  'node_credentials.key_sealed': 'SELECT credential_id AS key, key_sealed AS blob FROM node_credentials',
  // libs/secrets' columns: test/secrets.test.ts rotates rows of them; this file's fixtures leave them empty.
  'cluster_cas.key_sealed': 'SELECT id::text AS key, key_sealed AS blob FROM cluster_cas',
  'secret_versions.value_sealed': 'SELECT id::text AS key, value_sealed AS blob FROM secret_versions WHERE value_sealed IS NOT NULL',
  'secret_materials.material_sealed': 'SELECT id::text AS key, material_sealed AS blob FROM secret_materials',
  // libs/attestation's PCR-approval signing key: test/pcr-approvals.test.ts rotates it; empty here.
  'pcr_signing_keys.key_sealed': 'SELECT id::text AS key, key_sealed AS blob FROM pcr_signing_keys',
};

async function blobs(ds: DataSource): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const [column, sql] of Object.entries(READ_BACK)) {
    for (const row of (await ds.query(sql)) as { key: string; blob: Buffer }[]) {
      out.set(`${column} ${row.key}`, row.blob);
    }
  }
  return out;
}

/**
 * A migrated database with sealed rows in every sealed column, written through the owning
 * libraries: two audit signing keys (CheckpointSigner, two origins), and `machines` registrations
 * and node credentials (AttestationRepository), all sealed under `keys`.
 */
async function seeded(keys: MasterKeyProvider | MasterKeys, machines: number): Promise<Fixture> {
  const db = await createTestDatabase();
  const ds = await openDataSource(db.url);
  const fixture: Fixture = { db, ds, sealed: [] };
  fixtures.push(fixture);
  for (const origin of ['rotation.test/audit-a', 'rotation.test/audit-b']) {
    await new CheckpointSigner({ origin, masterKey: keys, signingKeySeed: null }).openSigningKey(ds);
  }
  for (const row of (await ds.query('SELECT key_id, sealed_private_key FROM audit_signing_keys')) as { key_id: string; sealed_private_key: Buffer }[]) {
    const context = `audit-signing-key:${row.key_id}`;
    fixture.sealed.push({ column: 'audit_signing_keys.sealed_private_key', key: row.key_id, context, plaintext: openEnvelope(keys, context, row.sealed_private_key).reveal() });
  }
  const repository = new AttestationRepository();
  for (let i = 0; i < machines; i++) {
    const machineId = randomUUID();
    await ds.query(`INSERT INTO machines (id, serial, group_name, ek_pub_hash, state, imported_at, updated_at) VALUES ($1, $2, 'rack-a', $3, 'imported', now(), now())`, [
      machineId,
      `SN-${i}`,
      randomBytes(32).toString('hex'),
    ]);
    const registrationId = randomUUID();
    const secret = randomBytes(32);
    const now = new Date();
    await ds.transaction(async (m) => {
      await repository.insert(
        {
          id: registrationId,
          machineId,
          previousState: 'imported',
          ekPubHash: randomBytes(32).toString('hex'),
          ekPublic: randomBytes(64),
          akPublic: randomBytes(64),
          akName: randomBytes(34),
          secretSealed: sealEnvelope(keys, registrationSecretContext(registrationId), secret),
          nonce: randomBytes(32),
          pcrBank: 'sha256',
          pcrs: [0, 7],
          createdAt: now,
          deadline: new Date(now.getTime() + 60000),
        },
        m,
      );
      const credentialId = randomBytes(16).toString('hex');
      const credentialKey = randomBytes(32);
      await repository.replaceCredential({ credentialId, machineId, registrationId, keySealed: sealEnvelope(keys, nodeCredentialContext(credentialId), credentialKey), createdAt: now }, m);
      fixture.sealed.push({ column: 'attestation_registrations.secret_sealed', key: registrationId, context: registrationSecretContext(registrationId), plaintext: secret });
      fixture.sealed.push({ column: 'node_credentials.key_sealed', key: credentialId, context: nodeCredentialContext(credentialId), plaintext: credentialKey });
    });
  }
  return fixture;
}

/** Which rows open under `key` alone, and that each opens to its plaintext; the others must be refused by KEK ID. */
async function underKey(fixture: Fixture, key: MasterKeyProvider): Promise<{ opened: string[]; other: string[] }> {
  const stored = await blobs(fixture.ds);
  const opened: string[] = [];
  const other: string[] = [];
  for (const s of fixture.sealed) {
    const blob = stored.get(`${s.column} ${s.key}`)!;
    try {
      expect(openEnvelope(key, s.context, blob).reveal().equals(s.plaintext)).toBe(true);
      opened.push(`${s.column} ${s.key}`);
    } catch (error) {
      expect(error).toBeInstanceOf(EnvelopeKeyMismatchError);
      other.push(`${s.column} ${s.key}`);
    }
  }
  return { opened, other };
}

async function auditActions(ds: DataSource): Promise<{ action: string; outcome: string; details: Record<string, unknown> }[]> {
  return (await ds.query(`SELECT action, outcome, details FROM audit_log WHERE action LIKE 'master-key.%' ORDER BY id`)) as { action: string; outcome: string; details: Record<string, unknown> }[];
}

let softhsm: SoftHsmToken;
let token: Pkcs11Token;

beforeAll(async () => {
  softhsm = await createSoftHsmToken();
  token = Pkcs11Token.open(softhsm.settings);
});

afterAll(async () => {
  for (const f of fixtures) {
    await f.ds.destroy().catch(() => undefined);
    await f.db.drop();
  }
  token?.close();
  await softhsm?.remove();
});

describe('the sealed-column registry', () => {
  it('lists every bytea column of the schema that holds envelopes (named *sealed*), and nothing else', async () => {
    const { ds } = await seeded(new EnvMasterKey(new SecretBytes(randomBytes(32))), 1);
    const columns = (await ds.query(
      `SELECT table_name || '.' || column_name AS name FROM information_schema.columns
        WHERE table_schema = 'public' AND data_type = 'bytea' AND column_name LIKE '%sealed%' ORDER BY 1`,
    )) as { name: string }[];
    expect(columns.map((c) => c.name)).toEqual(SEALED_COLUMNS.map((c) => c.name).sort());
    expect(Object.keys(READ_BACK).sort()).toEqual(SEALED_COLUMNS.map((c) => c.name).sort());
  });
});

describe('rackseal master-key rotate', () => {
  it('env → env: interrupted after its first batch, resumed, every row opens under the new key only, the data ciphertext unchanged', async () => {
    const oldKey = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const newKey = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const fixture = await seeded(oldKey, 4);
    const before = await blobs(fixture.ds);
    const audit = new AuditLog(fixture.ds, new SystemClock());
    const keys = new MasterKeys(newKey, [oldKey]);

    // The process "dies" right after the first batch committed (the two audit signing keys): the progress callback throws.
    let batches = 0;
    await expect(
      rotateMasterKey(fixture.ds, audit, SEALED_COLUMNS, keys, {
        batchSize: 2,
        actor: 'test:rotation',
        onBatch: () => {
          if (++batches === 1) {
            throw new Error('killed after the first batch');
          }
        },
      }),
    ).rejects.toThrow('killed after the first batch');
    const partial = await underKey(fixture, newKey);
    expect(partial.opened).toHaveLength(2);
    expect(partial.other).toHaveLength(fixture.sealed.length - 2);
    // Meanwhile a process holding both keys still opens every row.
    for (const s of fixture.sealed) {
      expect(openEnvelope(keys, s.context, (await blobs(fixture.ds)).get(`${s.column} ${s.key}`)!).reveal().equals(s.plaintext)).toBe(true);
    }

    const progress: string[] = [];
    const report = await rotateMasterKey(fixture.ds, audit, SEALED_COLUMNS, keys, { batchSize: 2, actor: 'test:rotation', onBatch: (p) => void progress.push(`${p.column} ${p.rewrapped}/${p.pendingAtStart}`) });
    expect(report.done).toBe(true);
    expect(report.columns.map((c) => [c.column, c.rewrapped, c.remaining, c.refused.length])).toEqual([
      ['audit_signing_keys.sealed_private_key', 0, 0, 0],
      ['attestation_registrations.secret_sealed', 4, 0, 0],
      ['node_credentials.key_sealed', 4, 0, 0],
      ['pcr_signing_keys.key_sealed', 0, 0, 0],
      ['cluster_cas.key_sealed', 0, 0, 0],
      ['secret_versions.value_sealed', 0, 0, 0],
      ['secret_materials.material_sealed', 0, 0, 0],
    ]);
    expect(progress).toEqual(['attestation_registrations.secret_sealed 2/4', 'attestation_registrations.secret_sealed 4/4', 'node_credentials.key_sealed 2/4', 'node_credentials.key_sealed 4/4']);
    const after = await underKey(fixture, newKey);
    expect(after.opened).toHaveLength(fixture.sealed.length);
    expect((await underKey(fixture, oldKey)).opened).toEqual([]);
    const stored = await blobs(fixture.ds);
    for (const [where, blob] of before) {
      const now = stored.get(where)!;
      expect(now.subarray(1, 9).equals(newKey.kekId)).toBe(true);
      expect(now.subarray(73).equals(blob.subarray(73))).toBe(true);
    }

    // Audited at each start and end, the interrupted run as a failure; never key material.
    const records = await auditActions(fixture.ds);
    expect(records.map((r) => [r.action, r.outcome])).toEqual([
      ['master-key.rotation-started', 'success'],
      ['master-key.rotation-finished', 'failure'],
      ['master-key.rotation-started', 'success'],
      ['master-key.rotation-finished', 'success'],
    ]);
    expect(records[2]!.details).toMatchObject({
      to: 'env',
      columns: [
        { column: 'audit_signing_keys.sealed_private_key', pending: 0 },
        { column: 'attestation_registrations.secret_sealed', pending: 4 },
        { column: 'node_credentials.key_sealed', pending: 4 },
        { column: 'pcr_signing_keys.key_sealed', pending: 0 },
        { column: 'cluster_cas.key_sealed', pending: 0 },
        { column: 'secret_versions.value_sealed', pending: 0 },
        { column: 'secret_materials.material_sealed', pending: 0 },
      ],
    });
    const text = JSON.stringify(records);
    for (const secret of [...fixture.sealed.map((s) => s.plaintext)]) {
      for (const r of renderings(secret)) {
        expect(text).not.toContain(r);
      }
    }
  });

  it('pkcs11 → another pkcs11 key on the token: every row moves, none opens under the old key', async () => {
    const a = Pkcs11MasterKey.create(token, 'rotation-a');
    const b = Pkcs11MasterKey.create(token, 'rotation-b');
    const fixture = await seeded(a, 2);
    const report = await rotateMasterKey(fixture.ds, new AuditLog(fixture.ds, new SystemClock()), SEALED_COLUMNS, new MasterKeys(b, [a]), { batchSize: 100, actor: 'test:rotation' });
    expect(report.done).toBe(true);
    expect(report.to).toEqual({ description: 'pkcs11:rotation-b', kekId: b.kekId.toString('hex') });
    expect((await underKey(fixture, b)).opened).toHaveLength(fixture.sealed.length);
    expect((await underKey(fixture, a)).opened).toEqual([]);
  });

  it('reports a row no key opens and leaves it as it is, ends not done (audited as a failure); the others move', async () => {
    const oldKey = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const newKey = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const stranger = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const fixture = await seeded(oldKey, 2);
    const strangerRow = fixture.sealed.find((s) => s.column === 'node_credentials.key_sealed')!;
    const strangerBlob = sealEnvelope(stranger, strangerRow.context, strangerRow.plaintext);
    await fixture.ds.query('UPDATE node_credentials SET key_sealed = $2 WHERE credential_id = $1', [strangerRow.key, strangerBlob]);
    const report = await rotateMasterKey(fixture.ds, new AuditLog(fixture.ds, new SystemClock()), SEALED_COLUMNS, new MasterKeys(newKey, [oldKey]), { batchSize: 1, actor: 'test:rotation' });
    expect(report.done).toBe(false);
    const credentials = report.columns.find((c) => c.column === 'node_credentials.key_sealed')!;
    expect([credentials.rewrapped, credentials.remaining, credentials.refused.map((r) => r.key)]).toEqual([1, 1, [strangerRow.key]]);
    expect(credentials.refused[0]!.reason).toMatch(/^the envelope was sealed under another master key \(key ID [0-9a-f]{16}/);
    expect((await blobs(fixture.ds)).get(`node_credentials.key_sealed ${strangerRow.key}`)!.equals(strangerBlob)).toBe(true);
    expect((await auditActions(fixture.ds)).at(-1)).toMatchObject({ action: 'master-key.rotation-finished', outcome: 'failure', details: { done: false } });
  });

  it('env → pkcs11 through the CLI: killed while a batch waits, run again, done; a pg_dump holds no sealed plaintext', async () => {
    const oldSecret = randomBytes(32);
    const oldKey = new EnvMasterKey(new SecretBytes(oldSecret));
    const fixture = await seeded(oldKey, 3);
    const env = { DATABASE_URL: fixture.db.url, RACKSEAL_ENV: 'test', ...softhsm.env('rotation-cli'), RACKSEAL_MASTER_KEY_PREVIOUS: oldSecret.toString('hex') };

    const init = await runRacksealCliAsync(['master-key', 'init'], { env });
    expect([init.status, init.stderr]).toEqual([0, '']);
    expect(init.stdout).toMatch(/^created pkcs11:rotation-cli on token "rs-[0-9a-f]+", KEK ID [0-9a-f]{16}\n$/);
    const again = await runRacksealCliAsync(['master-key', 'init'], { env });
    expect([again.status, again.stderr]).toEqual([1, `rackseal: master-key init: the PKCS#11 token "${softhsm.tokenLabel}" already has a key labelled "rotation-cli"\n`]);
    const newKey = Pkcs11MasterKey.find(token, 'rotation-cli');

    // Hold the first node credential's row: the CLI's batch on that column waits for it, and is killed there.
    const firstCredential = fixture.sealed.filter((s) => s.column === 'node_credentials.key_sealed').map((s) => s.key).sort()[0]!;
    const holder = fixture.ds.createQueryRunner();
    await holder.connect();
    await holder.startTransaction();
    await holder.query('SELECT 1 FROM node_credentials WHERE credential_id = $1 FOR UPDATE', [firstCredential]);
    let child: ChildProcessWithoutNullStreams | undefined;
    try {
      child = spawnCli('rackseal', ['master-key', 'rotate', '--batch-size', '1'], { env });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const waiting = await pollUntil(
        async () => ((await fixture.ds.query(`SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.application_name = 'rackseal-cli'`)) as { n: number }[])[0]!.n,
        (n) => n > 0,
      );
      expect(waiting).toBe(1);
      expect(stderr).toContain('attestation_registrations.secret_sealed: 3 of 3 re-wrapped\n');
      const exited = new Promise((resolve) => child!.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    } finally {
      await holder.rollbackTransaction();
      await holder.release();
    }
    const partial = await underKey(fixture, newKey);
    expect(partial.other.sort()).toEqual(fixture.sealed.filter((s) => s.column === 'node_credentials.key_sealed').map((s) => `${s.column} ${s.key}`).sort());

    const resumed = await runRacksealCliAsync(['master-key', 'rotate', '--batch-size', '1'], { env });
    expect(resumed.status).toBe(0);
    expect(resumed.stdout).toBe(
      [
        'audit_signing_keys.sealed_private_key: 0 re-wrapped, 0 not under the current key',
        'attestation_registrations.secret_sealed: 0 re-wrapped, 0 not under the current key',
        'node_credentials.key_sealed: 3 re-wrapped, 0 not under the current key',
        'pcr_signing_keys.key_sealed: 0 re-wrapped, 0 not under the current key',
        'cluster_cas.key_sealed: 0 re-wrapped, 0 not under the current key',
        'secret_versions.value_sealed: 0 re-wrapped, 0 not under the current key',
        'secret_materials.material_sealed: 0 re-wrapped, 0 not under the current key',
        `done: every sealed row is under pkcs11:rotation-cli (KEK ID ${newKey.kekId.toString('hex')}); the previous keys may be removed`,
        '',
      ].join('\n'),
    );
    expect((await underKey(fixture, newKey)).opened).toHaveLength(fixture.sealed.length);
    expect((await underKey(fixture, oldKey)).opened).toEqual([]);
    // Neither the PIN nor the old key reached the output or the audit log.
    const said = `${init.stdout}${resumed.stdout}${resumed.stderr}${JSON.stringify(await auditActions(fixture.ds))}`;
    expect(said).not.toContain(softhsm.pin);
    for (const r of renderings(oldSecret)) {
      expect(said).not.toContain(r);
    }

    // The dump of the whole database: no sealed plaintext in any form, nor the old env key.
    const dump = dumpDatabase(fixture.db.url);
    expect(dump.includes(Buffer.from('COPY public.node_credentials'))).toBe(true);
    const text = dump.toString('latin1');
    // The search finds what is stored in the clear (a serial), so finding nothing below means something.
    expect(text).toContain('SN-0');
    for (const secret of [...fixture.sealed.map((s) => s.plaintext), oldSecret]) {
      expect(dump.includes(secret)).toBe(false);
      for (const r of renderings(secret)) {
        expect(text).not.toContain(r);
      }
    }
  });

  it('refuses bad settings by name, never echoing a key or the PIN', async () => {
    const fixture = await seeded(new EnvMasterKey(new SecretBytes(randomBytes(32))), 1);
    const base = { DATABASE_URL: fixture.db.url, RACKSEAL_ENV: 'test' };
    const badBatch = await runRacksealCliAsync(['master-key', 'rotate', '--batch-size', '0'], { env: base });
    expect([badBatch.status, badBatch.stderr]).toEqual([2, 'rackseal: master-key rotate: --batch-size must be an integer from 1 to 10000\n']);
    const shortKey = 'ab'.repeat(31);
    const badPrevious = await runRacksealCliAsync(['master-key', 'rotate'], { env: { ...base, RACKSEAL_MASTER_KEY_PREVIOUS: shortKey } });
    expect([badPrevious.status, badPrevious.stderr]).toEqual([
      2,
      'rackseal: master-key rotate: master-key settings: RACKSEAL_MASTER_KEY_PREVIOUS: must be exactly 32 bytes written as 64 hex characters or base64 (value not shown)\n',
    ]);
    const wrongPin = await runRacksealCliAsync(['master-key', 'rotate'], { env: { ...base, ...softhsm.env('rotation-a'), PKCS11_PIN: 'wrong-pin-0000' } });
    expect([wrongPin.status, wrongPin.stderr]).toEqual([1, `rackseal: master-key rotate: the PKCS#11 token "${softhsm.tokenLabel}" refused the login (PKCS11_PIN): CKR_PIN_INCORRECT\n`]);
    const envInit = await runRacksealCliAsync(['master-key', 'init'], { env: base });
    expect([envInit.status, envInit.stderr]).toEqual([2, 'rackseal: master-key init: only a pkcs11 master key is created here (MASTER_KEY_PROVIDER=pkcs11); an env key is `openssl rand -hex 32`\n']);
    // Nothing was rotated or audited by the refused runs.
    expect(await auditActions(fixture.ds)).toEqual([]);
  });
});
