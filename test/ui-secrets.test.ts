/**
 * The dashboard's secrets views in a real browser (issue 16, secrets and rotations): Debian's
 * Chromium driven by playwright-core against the control-plane process of the delivery suites'
 * fleet (test/support/mailbox-fleet.ts: two machines enrolled on swtpm, real PostgreSQL and Redis,
 * worker processes sealing with the test-only sealer, simulated agents that open their envelopes
 * and ack). The list shows each secret's version, rollout, schedule and retired versions; a
 * rotation started from a secret's page (confirmed in a dialog) is watched live from "0 of 2 acked"
 * to "2 of 2 acked" while the agents ack one machine at a time; a failed delivery (the dead letter)
 * shows with its error, attempts and machine and is retried from the page, audited as the token; a
 * token with secrets:read only sees neither control and the API refuses its session's forged
 * POSTs. Screenshots go to test-artifacts/ui/ (gitignored).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Test } from '@nestjs/testing';
import { CSRF_HEADER, type DeliveryView, type SecretVersionDetail, type SecretView, type VersionDeliveryProgress } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import { DeliveryProcessor, UnwiredEnvelopeSealer } from '@rackseal/deliveries';
import type { MailboxResponse } from '@rackseal/node-api-contracts';
import { type Browser, chromium, type Page } from 'playwright-core';
import request from 'supertest';
import { JOB_HANDLER_PROVIDERS, WorkerModule } from '../apps/worker/src/worker.module';
import { useMailboxFleet } from './support/mailbox-fleet';
import { repoRoot } from './support/repo-root';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';
import { openTestEnvelope } from './support/test-envelope-sealer';
import { pollUntil } from './support/wait';
import { CHROMIUM, signInWithToken, watchedPage } from './support/chromium';

jest.setTimeout(240_000);

const SCREENSHOTS = join(repoRoot(), 'test-artifacts', 'ui');

describe('secrets and rotations in Chromium (issue 16)', () => {
  const fixture = useSwtpms(1, { p256: true });
  const fleet = useMailboxFleet(fixture);
  const { fleetKey, machineId, poll, ack, startWorker } = fleet;
  let baseUrl: string;
  let browser: Browser;
  const tokens: Record<'admin' | 'viewer', { id: string; token: string }> = {} as never;
  const requested: string[] = [];
  const refusedResponses: string[] = [];
  const consoleErrors: string[] = [];
  /** The delivery the third case fails and retries. */
  let unluckyId = '';

  const asAdmin = (method: 'get' | 'post', path: string) => request(fleet.parts.app.getHttpServer())[method](path).set('Authorization', `Bearer ${tokens.admin.token}`);
  const progressOf = async (name: string, version: number) => (await asAdmin('get', `/v1/secrets/${name}/versions/${version}/deliveries`)).body as VersionDeliveryProgress;
  const deliveriesOf = async (query: string) => (await asAdmin('get', `/v1/deliveries?${query}`)).body as DeliveryView[];
  const auditOf = async (action: string, subject: string) =>
    (await fleet.parts.ds.query('SELECT actor, outcome, details FROM audit_log WHERE action = $1 AND subject = $2 ORDER BY id', [action, subject])) as { actor: string; outcome: string; details: Record<string, unknown> }[];

  /** One simulated agent pass for `serial`: opens each ready envelope of `secret` and acks it; answers how many it acked. */
  async function agentPass(serial: string, secret: string): Promise<number> {
    const box = (await poll(serial)).json as unknown as MailboxResponse;
    let acked = 0;
    for (const d of box.deliveries.filter((x) => x.secret === secret)) {
      const opened = openTestEnvelope(fleetKey, machineId[serial]!, d.id, d.version, Buffer.from(d.envelope, 'base64'));
      const answer = await ack(serial, d.id, opened.ackProof);
      // An older version's delivery may be cancelled (retired) between the poll and the ack.
      expect([200, 409]).toContain(answer.status);
      acked += answer.status === 200 ? 1 : 0;
    }
    return acked;
  }

  /** `serial`'s agent acks `secret`'s deliveries until the one of `version` is acked (after the worker sealed it). */
  async function ackOn(serial: string, secret: string, version: number): Promise<void> {
    const acked = async () => (await deliveriesOf(`secret=${secret}&machine=${serial}`)).some((d) => d.secret.version === version && d.state === 'acked');
    expect(await pollUntil(async () => (await agentPass(serial, secret), acked()), (done) => done, 120_000, 200)).toBe(true);
  }

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    baseUrl = fleet.parts.cp2.baseUrl;
    const issue = fleet.parts.app.get(ApiTokens);
    tokens.admin = await issue.issue('ui-secrets-admin', ['admin'], 'test');
    // Reads secrets and the overview the sign-in lands on; writes nothing.
    tokens.viewer = await issue.issue('ui-secrets-viewer', ['secrets:read', 'inventory:read'], 'test');
    browser = await chromium.launch(CHROMIUM);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
  });

  const newPage = () => watchedPage(browser, { requested, refusedResponses, consoleErrors }, 1400);

  const signIn = (page: Page, token: string) => signInWithToken(page, baseUrl, token);

  /** A state change as the page's own script would send it: the session cookie and the given CSRF header. */
  const postFromPage = (page: Page, path: string, csrf: string, body: unknown) =>
    page.evaluate(
      async ({ path, csrf, header, body }) => {
        const response = await fetch(path, { method: 'POST', headers: { [header]: csrf, 'Content-Type': 'application/json' }, credentials: 'same-origin', body: JSON.stringify(body) });
        return { status: response.status, body: (await response.json()) as { code?: string; message?: string } };
      },
      { path, csrf, header: CSRF_HEADER, body },
    );

  /** A secrets-list row's cells, by column header. */
  async function listRow(page: Page, name: string): Promise<Record<string, string>> {
    const table = page.getByRole('table', { name: /^Secrets from the first name/ });
    await table.waitFor();
    const headers = await table.locator('thead th').allTextContents();
    const cells = await table.getByRole('row').filter({ has: page.getByRole('rowheader', { name, exact: true }) }).locator('th, td').allTextContents();
    return Object.fromEntries(headers.map((h, i) => [h, cells[i]?.trim() ?? '']));
  }

  it('the list shows each secret with its current version, its rollout, its schedule and next rotation, and no retired version yet; a certificate secret\'s page dates its renewal from its earliest certificate', async () => {
    for (const body of [
      { name: 'app-key', kind: 'opaque', target: { group: 'workers' }, binding: 'pcr-sealed' },
      { name: 'root-disk', kind: 'disk', target: { group: 'workers' }, binding: 'pcr-sealed', parameters: { rotateEveryDays: 30 } },
      { name: 'web-tls', kind: 'tls', target: { group: 'workers' }, binding: 'pcr-sealed', parameters: { sans: ['{hostname}.cluster.internal'], validityDays: 90, renewBeforeDays: 30 } },
    ]) {
      const created = await asAdmin('post', '/v1/secrets').send(body);
      expect([created.status, created.body.code]).toEqual([201, undefined]);
    }
    await startWorker();
    for (const serial of ['SN-RSA', 'SN-P256']) {
      await ackOn(serial, 'app-key', 1);
    }
    expect(await progressOf('app-key', 1)).toMatchObject({ total: 2, settled: true, states: { acked: 2 } });
    const disk = (await asAdmin('get', '/v1/secrets/root-disk')).body as SecretView;
    const tls = (await asAdmin('get', '/v1/secrets/web-tls')).body as SecretView;
    const [tlsVersion] = (await asAdmin('get', '/v1/secrets/web-tls/versions')).body as SecretVersionDetail[];
    const shown = (at: number) => `${new Date(at).toISOString().slice(0, 19).replace('T', ' ')} UTC`;

    const { context, page } = await newPage();
    await signIn(page, tokens.admin.token);
    await page.getByRole('link', { name: 'Secrets', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Secrets and rotations' }).waitFor();
    expect(await listRow(page, 'app-key')).toEqual({
      Name: 'app-key',
      Kind: 'opaque',
      Target: 'group workers',
      'Current version': '1',
      'Its rollout': '2 of 2 acked',
      Schedule: 'on demand only',
      'Next rotation': '—',
      'Retired versions': 'none (first version)',
    });
    const day = 86_400_000;
    expect(await listRow(page, 'root-disk')).toMatchObject({
      Kind: 'disk',
      'Current version': '1',
      Schedule: 'a new key every 30 d',
      'Next rotation': shown(Date.parse(disk.latestVersion.createdAt) + 30 * day),
      'Retired versions': 'none (first version)',
    });
    // Certificates: the list estimates from the version's creation (said with ≈) ...
    expect(await listRow(page, 'web-tls')).toMatchObject({
      Kind: 'tls',
      Schedule: 'renewed 30 d before each certificate ends (valid 90 d)',
      'Next rotation': `≈ ${shown(Date.parse(tls.latestVersion.createdAt) + 60 * day)}`,
    });
    // Metadata only: nothing on the page looks like the material (no base64 of 32 bytes).
    expect(await page.locator('main').textContent()).not.toMatch(/[A-Za-z0-9+/]{43}=/);
    await page.screenshot({ path: join(SCREENSHOTS, 'secrets-1-list.png'), fullPage: true });

    // ... the secret's page says it exactly, from its earliest certificate, as the worker decides.
    await page.getByRole('link', { name: 'web-tls' }).click();
    await page.getByRole('heading', { level: 1, name: 'Secret web-tls' }).waitFor();
    const earliest = Math.min(...tlsVersion!.materials.map((m) => Date.parse(m.notAfter!)));
    await expect(page.locator('dt:text-is("Next rotation") + dd').textContent()).resolves.toBe(shown(earliest - 30 * day));
    await page.getByText('2 machine(s)').click();
    for (const m of tlsVersion!.materials) {
      await expect(page.getByRole('listitem').filter({ hasText: m.serial }).textContent()).resolves.toContain(`certificate ${m.certificateSerial}, ends ${shown(Date.parse(m.notAfter!))}`);
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'secrets-1b-tls.png'), fullPage: true });
    await context.close();
  });

  it('a rotation started from the secret\'s page, after its confirmation, is watched live until "2 of 2 acked"; the API counts agree and the older version shows retired', async () => {
    await startWorker();
    const { context, page } = await newPage();
    await signIn(page, tokens.admin.token);
    await page.goto(`${baseUrl}/ui/#/secrets/app-key`);
    await page.getByRole('heading', { level: 1, name: 'Secret app-key' }).waitFor();
    const rollout = page.getByRole('region', { name: 'Rollout of version 1' });
    await rollout.getByText('2 of 2 acked').waitFor();
    await page.getByRole('table', { name: /1 version\(s\)/ }).waitFor();

    // The dialog takes focus (on Cancel), Escape closes it and nothing is written.
    const button = page.getByRole('button', { name: 'Start a rotation' });
    await button.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Rotate app-key?' });
    await dialog.waitFor();
    expect(await page.evaluate('document.activeElement && document.activeElement.textContent')).toBe('Cancel');
    await page.screenshot({ path: join(SCREENSHOTS, 'secrets-2-rotate-dialog.png'), fullPage: true });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await page.evaluate('document.activeElement && document.activeElement.textContent')).toBe('Start a rotation');
    expect(((await asAdmin('get', '/v1/secrets/app-key')).body as SecretView).latestVersion.version).toBe(1);

    await page.keyboard.press('Enter');
    await dialog.getByRole('button', { name: 'Rotate to version 2' }).click();
    await page.getByRole('status').filter({ hasText: 'Version 2 created' }).waitFor();
    const live = page.getByRole('region', { name: 'Rollout of version 2' });
    await live.getByText('0 of 2 acked').waitFor();
    await live.getByText(/^Watching/).waitFor();
    expect(await live.getByRole('progressbar').getAttribute('aria-label')).toBe('Version 2: 0 of 2 acked');
    await page.screenshot({ path: join(SCREENSHOTS, 'secrets-3-rollout-watching.png'), fullPage: true });

    // One machine acks: the page moves on by itself.
    await ackOn('SN-RSA', 'app-key', 2);
    await live.getByText('1 of 2 acked').waitFor();
    expect(await live.getByRole('progressbar').evaluate((bar) => [(bar as unknown as { value: number; max: number }).value, (bar as unknown as { value: number; max: number }).max])).toEqual([1, 2]);
    await ackOn('SN-P256', 'app-key', 2);
    await live.getByText('2 of 2 acked').waitFor();
    await live.getByText('Settled: every target acked.').waitFor();
    expect(await progressOf('app-key', 2)).toMatchObject({ version: 2, total: 2, settled: true, retiredAt: null, states: { pending: 0, ready: 0, acked: 2, failed: 0 } });
    expect((await progressOf('app-key', 1)).retiredAt).not.toBeNull();
    // The versions table was read again once the rollout settled: version 1 retired.
    const versions = page.getByRole('table', { name: /2 version\(s\)/ });
    await versions.waitFor();
    await expect(versions.getByRole('row').filter({ has: page.getByRole('rowheader', { name: '1', exact: true }) }).locator('td').nth(1).textContent()).resolves.toMatch(/ UTC$/);
    await page.screenshot({ path: join(SCREENSHOTS, 'secrets-4-rollout-acked.png'), fullPage: true });

    const rotated = await auditOf('secret.rotated', 'secret:app-key');
    expect(rotated.map((r) => [r.actor, r.outcome, r.details.version])).toEqual([[`token:${tokens.admin.id}`, 'success', 2]]);
    // Settled: the page stops asking. (This wait can only hide a failure, never make one.)
    const asked = () => requested.filter((url) => url.endsWith('/v1/secrets/app-key/versions/2/deliveries')).length;
    const before = asked();
    await page.waitForTimeout(2500);
    expect(asked()).toBe(before);

    await page.getByRole('link', { name: '← All secrets' }).click();
    expect(await listRow(page, 'app-key')).toMatchObject({ 'Current version': '2', 'Its rollout': '2 of 2 acked', 'Retired versions': 'version 1' });
    await context.close();
  });

  it('a failed delivery shows with its error, attempts and machine; a secrets:read session sees no control and its forged POSTs are refused; the admin retries it from the page, audited, and a worker delivers it', async () => {
    const created = await asAdmin('post', '/v1/secrets').send({ name: 'unlucky', kind: 'opaque', target: { machine: 'SN-RSA' }, binding: 'pcr-sealed' });
    expect(created.status).toBe(201);
    const [delivery] = await deliveriesOf('secret=unlucky');
    unluckyId = delivery!.id;
    // No worker runs in this case until the retry: the last attempt fails with no sealer wired.
    const moduleRef = await Test.createTestingModule({
      imports: [WorkerModule.forRoot(testConfig(fleet.parts.db, fleet.parts.prefix.prefix, { LOG_LEVEL: 'silent' }), JOB_HANDLER_PROVIDERS, { sealer: new UnwiredEnvelopeSealer() })],
    }).compile();
    try {
      await expect(moduleRef.get(DeliveryProcessor).deliver(delivery!.id, 1, true)).rejects.toMatchObject({ code: 'delivery.sealer-unavailable' });
    } finally {
      await moduleRef.close();
    }
    const failed = await deliveriesOf('state=failed');
    expect(failed.map((d) => [d.id, d.state, d.lastError, d.attempts, d.machine.serial])).toEqual([[delivery!.id, 'failed', 'delivery.sealer-unavailable', 1, 'SN-RSA']]);

    // The read-only session: the rows, no button; the API refuses its own cookie and CSRF token.
    {
      const { context, page } = await newPage();
      await signIn(page, tokens.viewer.token);
      await page.goto(`${baseUrl}/ui/#/secrets/app-key`);
      await page.getByRole('region', { name: 'Rollout of version 2' }).getByText('2 of 2 acked').waitFor();
      expect(await page.getByRole('button', { name: 'Start a rotation' }).count()).toBe(0);
      await page.goto(`${baseUrl}/ui/#/deliveries?state=failed`);
      const table = page.getByRole('table', { name: /state failed/ });
      await table.getByRole('row', { name: /unlucky/ }).waitFor();
      expect(await page.getByRole('button', { name: /^Retry/ }).count()).toBe(0);
      expect(await table.getByRole('columnheader', { name: 'Action' }).count()).toBe(0);
      await page.screenshot({ path: join(SCREENSHOTS, 'secrets-5-failed-viewer.png'), fullPage: true });
      const csrf = await page.evaluate(async () => ((await (await fetch('/v1/session')).json()) as { csrfToken: string }).csrfToken);
      const rotate = await postFromPage(page, '/v1/secrets/app-key/versions', csrf, { group: 'workers' });
      expect([rotate.status, rotate.body.message]).toEqual([403, 'this token lacks the "secrets:write" scope']);
      const retry = await postFromPage(page, `/v1/deliveries/${delivery!.id}/retry`, csrf, {});
      expect([retry.status, retry.body.message]).toEqual([403, 'this token lacks the "secrets:write" scope']);
      const refusals = (await fleet.parts.ds.query("SELECT details FROM audit_log WHERE action = 'auth.refused' AND actor = $1 ORDER BY id", [`token:${tokens.viewer.id}`])) as { details: Record<string, unknown> }[];
      expect(refusals.map((r) => [r.details.reason, r.details.method, r.details.path, r.details.scope])).toEqual([
        ['forbidden', 'POST', '/v1/secrets/app-key/versions', 'secrets:write'],
        ['forbidden', 'POST', `/v1/deliveries/${delivery!.id}/retry`, 'secrets:write'],
      ]);
      expect(((await asAdmin('get', '/v1/secrets/app-key')).body as SecretView).latestVersion.version).toBe(2);
      expect((await deliveriesOf('secret=unlucky')).map((d) => [d.state, d.generation])).toEqual([['failed', 1]]);
      await context.close();
    }

    const { context, page } = await newPage();
    await signIn(page, tokens.admin.token);
    await page.goto(`${baseUrl}/ui/#/secrets`);
    await page.getByRole('link', { name: 'Failed deliveries (the dead letter)' }).click();
    await page.getByRole('heading', { level: 1, name: 'Failed deliveries' }).waitFor();
    const table = page.getByRole('table', { name: /state failed/ });
    const row = table.getByRole('row', { name: /unlucky/ });
    await row.waitFor();
    const headers = await table.locator('thead th').allTextContents();
    const cells = await row.locator('th, td').allTextContents();
    expect(Object.fromEntries(headers.map((h, i) => [h, cells[i]]))).toMatchObject({ Secret: 'unlucky', Version: '1', Machine: 'SN-RSA', State: '✕ failed', Error: 'delivery.sealer-unavailable', Attempts: '1', Round: '1' });
    await page.screenshot({ path: join(SCREENSHOTS, 'secrets-6-failed.png'), fullPage: true });

    const retryButton = row.getByRole('button', { name: 'Retry delivery of unlucky version 1 to SN-RSA' });
    await retryButton.click();
    const dialog = page.getByRole('dialog', { name: 'Retry this delivery?' });
    await expect(dialog.textContent()).resolves.toContain('failed with delivery.sealer-unavailable after 1 attempt(s)');
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect(await auditOf('delivery.retried', `delivery:${delivery!.id}`)).toEqual([]);

    // By keyboard this time: Enter opens it on Cancel, Tab reaches Retry.
    await retryButton.focus();
    await page.keyboard.press('Enter');
    await dialog.waitFor();
    expect(await page.evaluate('document.activeElement && document.activeElement.textContent')).toBe('Cancel');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('status').filter({ hasText: 'Delivery of unlucky version 1 to SN-RSA is pending again (round 2).' }).waitFor();
    // Read again: the failed list no longer holds it.
    await table.getByRole('row', { name: /unlucky/ }).waitFor({ state: 'detached' });
    expect((await deliveriesOf('secret=unlucky')).map((d) => [d.id, d.state, d.generation])).toEqual([[delivery!.id, 'pending', 2]]);
    const retried = await auditOf('delivery.retried', `delivery:${delivery!.id}`);
    expect(retried.map((r) => [r.actor, r.outcome, r.details.generation, r.details.lastError])).toEqual([[`token:${tokens.admin.id}`, 'success', 2, 'delivery.sealer-unavailable']]);
    await page.screenshot({ path: join(SCREENSHOTS, 'secrets-7-retried.png'), fullPage: true });

    await startWorker();
    const ready = await pollUntil(() => deliveriesOf('secret=unlucky'), (rows) => rows[0]?.state === 'ready', 60_000);
    expect(ready.map((d) => [d.state, d.generation, d.lastError])).toEqual([['ready', 2, null]]);
    await context.close();
  });

  it('a token without secrets:read is told so on the secrets views, which ask the API nothing', async () => {
    const none = await fleet.parts.app.get(ApiTokens).issue('ui-secrets-inventory', ['inventory:read'], 'test');
    const { context, page } = await newPage();
    await signIn(page, none.token);
    const before = requested.length;
    await page.goto(`${baseUrl}/ui/#/secrets/app-key`);
    await page.getByText('Needs the secrets:read scope.').waitFor();
    await page.goto(`${baseUrl}/ui/#/deliveries?state=failed`);
    await page.reload();
    await page.getByText('Needs the secrets:read scope.').waitFor();
    expect(requested.slice(before).filter((url) => /\/v1\/(secrets|deliveries)/.test(url))).toEqual([]);
    await context.close();
  });

  it('loaded nothing from anywhere but the control plane; the only refusals are the forged POSTs (and "no session yet" before each sign-in)', () => {
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((url) => !url.startsWith(`${baseUrl}/`))).toEqual([]);
    expect([...new Set(refusedResponses)].sort()).toEqual(['GET /v1/session 401', `POST /v1/deliveries/${unluckyId}/retry 403`, 'POST /v1/secrets/app-key/versions 403']);
    expect(consoleErrors.filter((text) => !/status of (401|403)/.test(text))).toEqual([]);
  });
});
