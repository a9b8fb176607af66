/**
 * Issue 16's acceptance, the operator's afternoon in one browser session, with nothing stood in: real
 * PostgreSQL and Redis, the BUILT control plane and worker as processes, two swtpm machines running the
 * BUILT `rackseal-agent run` with firmware event logs whose extends were applied to their TPMs, and
 * Debian's Chromium driven by playwright-core. Signs in; sees a machine quarantined after its PCR 4
 * was extended by another bootloader, the diverging event named on its page; promotes that canary
 * from the UI and sees the same running agent attested again; starts a rotation from the UI and
 * watches it until every target acked; verifies an audit record's inclusion proof in the browser;
 * signs out. Each view's screenshot goes to test-artifacts/ui-acceptance/ (gitignored).
 */
import { mkdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import type { DataSource } from 'typeorm';
import { bootWith } from './support/attestation-agent';
import { BOOT_APP_DIVERGENCE, FIRMWARE_LOG, otherBootloaderLog } from './support/bootloader-logs';
import { CHROMIUM } from './support/chromium';
import { type CliRun, runAgentCliAsync, runRacksealCli, runRacksealCliAsync, spawnCli } from './support/cli-runner';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { type RunningProcess, startApp, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { repoRoot } from './support/repo-root';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testEnv } from './support/test-config';
import { pollUntil } from './support/wait';

jest.setTimeout(300_000);

const SCREENSHOTS = join(repoRoot(), 'test-artifacts', 'ui-acceptance');
const GROUP = 'racks';
const CANARY = 'SN-CANARY';
const SECOND = 'SN-SECOND';
const SECRET = 'app-token';

function check(run: CliRun, what: string): string {
  if (run.status !== 0) {
    throw new Error(`${what} exited ${String(run.status)}: ${run.stderr}`);
  }
  return run.stdout;
}

describe('the dashboard drives a real fleet (issue 16 acceptance)', () => {
  const fixture = useSwtpms(2);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let ds: DataSource;
  let dir: string;
  let admin: string;
  let cp: { proc: RunningProcess; baseUrl: string };
  let worker: RunningProcess;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const agents = new Map<string, { kill: (signal: NodeJS.Signals) => void; exited: Promise<unknown>; out: string[] }>();

  const tpm = (serial: string): SwtpmMachine => fixture.at(serial === CANARY ? 0 : 1);
  const eventLogFile = (serial: string) => join(dir, `eventlog-${serial}`);
  const stateDir = (serial: string) => join(dir, `state-${serial}`);
  const cli = (...args: string[]) => runRacksealCliAsync(args, { env: { RACKSEAL_SERVER: cp.baseUrl, RACKSEAL_TOKEN: admin }, timeoutMs: 150_000 });
  const machineState = async (serial: string): Promise<string> =>
    ((await ds.query('SELECT state FROM machines WHERE serial = $1', [serial])) as { state: string }[])[0]!.state;
  const deliveryStates = async (version: number): Promise<string[]> =>
    ((await ds.query(
      `SELECT m.serial, d.state FROM deliveries d JOIN machines m ON m.id = d.machine_id JOIN secret_versions v ON v.id = d.version_id
         JOIN secrets s ON s.id = v.secret_id WHERE s.name = $1 AND v.version = $2 ORDER BY m.serial`,
      [SECRET, version],
    )) as { serial: string; state: string }[]).map((r) => `${r.serial} ${r.state}`);

  /** Power-cycles the machine's TPM and measures `log` into it, and the agent's event-log file becomes `log`: a boot. */
  async function boot(serial: string, log: Buffer): Promise<void> {
    await tpm(serial).reboot();
    await bootWith(tpm(serial), log);
    await writeFile(eventLogFile(serial), log);
  }

  function startAgent(serial: string, config: string): void {
    const child = spawnCli('rackseal-agent', ['run', '--config', config, '--server', cp.baseUrl, '--tpm', tpm(serial).device, '--state-dir', stateDir(serial), '--event-log', eventLogFile(serial), '--interval', '1h', '--ask-every', '2s']);
    const out: string[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(...chunk.toString('utf8').split('\n').filter((l) => l.trim() !== '')));
    child.stderr.on('data', () => undefined);
    agents.set(serial, { kill: (signal) => child.kill(signal), exited: new Promise((resolve) => child.once('exit', resolve)), out });
  }

  const shot = (name: string) => page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    dir = await mkdtemp(join(tmpdir(), 'rackseal-ui-acceptance-'));
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ds = await openDataSource(db.url, 2);
    const masterKey = { RACKSEAL_MASTER_KEY: 'ab'.repeat(32) };
    admin = check(runRacksealCli(['token', 'create', '--name', 'admin', '--scope', 'admin'], { env: { DATABASE_URL: db.url, ...masterKey } }), 'token create').trim();
    const env = testEnv(db, prefix.prefix, masterKey);
    cp = await startControlPlane(env);
    worker = startApp('worker', { ...env, LOG_LEVEL: 'info' });
    await worker.waitForLog((l) => l.msg === 'worker ready');

    await writeFile(join(dir, 'root.pem'), await fixture.ca.rootCertPem());
    await writeFile(join(dir, 'intermediate.pem'), await fixture.ca.intermediateCertPem());
    for (const pem of ['root.pem', 'intermediate.pem']) {
      check(await cli('vendor-ca', 'add', join(dir, pem)), `vendor-ca add ${pem}`);
    }
    const rows = ['serial,asset_tag,hostname,group,ek_cert,ek_pub_hash'];
    for (const serial of [CANARY, SECOND]) {
      rows.push(`${serial},,${serial.toLowerCase()}.racks,${GROUP},${(await tpm(serial).rsaEkCertDer()).toString('base64')},`);
    }
    await writeFile(join(dir, 'fleet.csv'), `${rows.join('\n')}\n`);
    check(await cli('inventory', 'import', join(dir, 'fleet.csv')), 'inventory import');

    // The first canary, as the CLI does it: refused for want of a policy, promoted, attested; the second machine boots the same.
    const enroll = (serial: string) => runAgentCliAsync(['enroll', '--server', cp.baseUrl, '--tpm', tpm(serial).device, '--state-dir', stateDir(serial), '--ek', 'rsa-2048', '--event-log', eventLogFile(serial), '--json']);
    await boot(CANARY, FIRMWARE_LOG);
    expect((await enroll(CANARY)).status).not.toBe(0);
    expect(await machineState(CANARY)).toBe('quarantined');
    check(await cli('policy', 'promote', GROUP, '--machine', CANARY, '--label', 'first'), 'policy promote');
    check(await enroll(CANARY), `enroll ${CANARY}`);
    await boot(SECOND, FIRMWARE_LOG);
    check(await enroll(SECOND), `enroll ${SECOND}`);

    for (const serial of [CANARY, SECOND]) {
      const config = join(dir, `agent-${serial}.yaml`);
      await writeFile(config, `installs:\n  ${SECRET}: {kind: opaque, path: ${join(dir, `files-${serial}`, 'token')}, mode: "0600"}\n`);
      startAgent(serial, config);
    }
    for (const serial of [CANARY, SECOND]) {
      expect([serial, await pollUntil(async () => agents.get(serial)!.out.some((l) => (JSON.parse(l) as { outcome: string }).outcome === 'attested'), (x) => x, 60_000)]).toEqual([serial, true]);
    }
    check(await cli('secrets', 'create', SECRET, '--kind', 'opaque', '--group', GROUP, '--binding', 'certified-key'), 'secrets create');
    expect(await pollUntil(() => deliveryStates(1), (s) => s.length === 2 && s.every((x) => x.endsWith('acked')), 120_000, 250)).toEqual([`${CANARY} acked`, `${SECOND} acked`]);

    browser = await chromium.launch(CHROMIUM);
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
  }, 300_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    for (const agent of agents.values()) {
      agent.kill('SIGKILL');
      await agent.exited;
    }
    await worker?.stop();
    await cp?.proc.stop();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
    if (dir !== undefined) {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('signs in and sees both machines attested on the overview', async () => {
    await page.goto(`${cp.baseUrl}/ui/`);
    await page.getByLabel('Operator token').fill(admin);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Fleet overview' }).waitFor();
    const byState = page.getByRole('table', { name: /machines$/ });
    await expect(byState.getByRole('row', { name: /attested/ }).first().textContent()).resolves.toMatch(/attested\s*2$/);
    await shot('1-overview');
  });

  it('starts a rotation from the secret\'s page and watches it until both running agents acked version 2', async () => {
    await page.getByRole('link', { name: 'Secrets', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Secrets and rotations' }).waitFor();
    await page.getByRole('link', { name: SECRET, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: `Secret ${SECRET}` }).waitFor();
    await page.getByRole('region', { name: 'Rollout of version 1' }).getByText('2 of 2 acked').waitFor();
    await page.getByRole('button', { name: 'Start a rotation' }).click();
    await page.getByRole('dialog', { name: `Rotate ${SECRET}?` }).getByRole('button', { name: 'Rotate to version 2' }).click();
    const live = page.getByRole('region', { name: 'Rollout of version 2' });
    await live.getByText('Settled: every target acked.').waitFor({ timeout: 120_000 });
    await live.getByText('2 of 2 acked').waitFor();
    expect(await deliveryStates(2)).toEqual([`${CANARY} acked`, `${SECOND} acked`]);
    // The agents' own word: each installed version 2 (its line is written when the poll carrying the ack is answered).
    for (const serial of [CANARY, SECOND]) {
      const installed = () =>
        Promise.resolve(agents.get(serial)!.out.map((l) => JSON.parse(l) as { outcome: string; secret?: string; version?: number }).some((l) => l.outcome === 'delivered' && l.secret === SECRET && l.version === 2));
      expect([serial, await pollUntil(installed, (x) => x, 60_000, 100)]).toEqual([serial, true]);
    }
    await shot('2-rotation-acked');
  });

  it('the second machine boots another bootloader: re-attestation asked from its page quarantines it, and the page names the diverging event', async () => {
    await boot(SECOND, otherBootloaderLog());
    await page.goto(`${cp.baseUrl}/ui/#/machines/${SECOND}`);
    await page.getByRole('heading', { level: 1, name: `Machine ${SECOND}` }).waitFor();
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Ask to re-attest now' }).click();
    await page.getByRole('status').filter({ hasText: 'Re-attestation requested' }).waitFor();
    expect(await pollUntil(() => machineState(SECOND), (s) => s === 'quarantined', 60_000, 250)).toBe('quarantined');

    await page.reload();
    await page.getByRole('heading', { name: 'Why its last attestation was refused' }).waitFor();
    await expect(page.getByRole('list', { name: 'Diverging events' }).textContent()).resolves.toContain(BOOT_APP_DIVERGENCE);
    const pcrTable = page.getByRole('table', { name: /allowed set/ });
    await pcrTable.getByRole('columnheader', { name: /Set “first” \(1 differ\)/ }).waitFor();
    await shot('3-machine-quarantined');
  });

  it('promotes that machine as the canary of its new bootloader from the group page (preview: PCR 4 new, recovers 1 of 1); its running agent attests again by itself', async () => {
    await page.getByRole('link', { name: GROUP, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: `Group ${GROUP}` }).waitFor();
    await page.getByRole('button', { name: `Promote ${SECOND}…` }).click();
    const dialog = page.getByRole('dialog', { name: `Promote a canary into group ${GROUP}` });
    await dialog.getByLabel('Label of the new allowed set').fill('second bootloader');
    await dialog.getByRole('button', { name: 'Preview' }).click();
    await expect(dialog.locator('.recovers').textContent()).resolves.toMatch(new RegExp(`^Recovers 1 of 1 failing machines? .*: ${SECOND}\\.$`));
    await expect(dialog.getByText(/^New values for PCR/).textContent()).resolves.toBe('New values for PCR 4: no current set has them.');
    await shot('4-promote-preview');
    await dialog.getByRole('button', { name: 'Confirm promotion' }).click();
    await page.getByRole('status').filter({ hasText: `Promoted ${SECOND}: set “second bootloader” approved.` }).waitFor();
    const promoted = (await ds.query("SELECT actor FROM audit_log WHERE action = 'policy.promoted' ORDER BY id")) as { actor: string }[];
    expect(promoted).toHaveLength(2);
    expect(promoted[1]!.actor).toMatch(/^token:/);

    // Nobody asks it: the agent's next question (--ask-every 2s) sees the new approvals and attests.
    expect(await pollUntil(() => machineState(SECOND), (s) => s === 'attested', 60_000, 250)).toBe('attested');
    await page.goto(`${cp.baseUrl}/ui/#/machines/${SECOND}`);
    await page.getByRole('heading', { level: 1, name: `Machine ${SECOND}` }).waitFor();
    await page.locator('dd').filter({ hasText: 'attested' }).first().waitFor();
    await shot('5-machine-attested-again');
  });

  it('finds the promotion in the audit view and verifies its inclusion proof against the signed checkpoint in the browser', async () => {
    // The worker's sequencer gives the record its place in the tree and signs a checkpoint covering it.
    const seqOf = async (): Promise<number | null> => {
      const [row] = (await ds.query("SELECT seq FROM audit_log WHERE action = 'policy.promoted' ORDER BY id DESC LIMIT 1")) as { seq: string | null }[];
      return row?.seq === null || row?.seq === undefined ? null : Number(row.seq);
    };
    const seq = await pollUntil(seqOf, (s) => s !== null, 60_000, 250);
    expect(seq).not.toBeNull();
    const covered = await pollUntil(
      async () => Number(((await ds.query('SELECT coalesce(max(tree_size), 0) AS n FROM audit_checkpoints')) as { n: string }[])[0]!.n),
      (n) => n > seq!,
      60_000,
      250,
    );
    expect(covered).toBeGreaterThan(seq!);

    await page.getByRole('link', { name: 'Audit', exact: true }).click();
    await page.getByLabel('Action').fill('policy.promoted');
    await page.getByLabel('Action').press('Enter');
    await page.getByRole('link', { name: `Record ${seq!}`, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: `Audit record ${seq!}` }).waitFor();
    await page.getByRole('button', { name: 'Verify inclusion' }).click();
    const verdict = page.getByRole('status').filter({ hasText: /Verified|Failed/ });
    await verdict.waitFor();
    expect(await verdict.textContent()).toMatch(new RegExp(`^✓ Verified: record ${seq!} is in the signed log of [0-9]+ records\\.$`));
    await shot('6-audit-verified');
  });

  it('signs out: the session is gone', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('status').filter({ hasText: 'Signed out.' }).waitFor();
    await page.getByLabel('Operator token').waitFor();
    expect(await context.cookies()).toEqual([]);
    await shot('7-signed-out');
  });
});
