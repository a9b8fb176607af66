/**
 * The dashboard's groups and policies view in a real browser (issue 16): Debian's Chromium driven by
 * playwright-core against a control plane on real PostgreSQL and Redis, with machines attested
 * in-process on swtpm (test/support/groups-fleet.ts: group racks with its canary promoted, two
 * machines booting bootloader B and one booting C, all three quarantined with PCR 4 differing).
 * The groups list's counts; the group page's sets and failing machines; promoting SN-B1 through the
 * dialog — its preview names PCR 4 and recovers exactly 2 of 3 —, after which SN-B1 attests and an
 * audit record names the token; approving a boot state and withdrawing it through their dialogs
 * (Escape and Cancel do nothing); a policy:read session sees no control and its forged POSTs are
 * refused 403. Screenshots of each view go to test-artifacts/ui/ (gitignored).
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import { CSRF_HEADER, type GroupPolicy, type MachineDetail } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import { type Browser, chromium, type Page } from 'playwright-core';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { attestOnce, LOG_B, LOG_C, seedGroupsFleet, sha256Values } from './support/groups-fleet';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { repoRoot } from './support/repo-root';
import { useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';
import { CHROMIUM, signInWithToken, watchedPage } from './support/chromium';

jest.setTimeout(180_000);

const SCREENSHOTS = join(repoRoot(), 'test-artifacts', 'ui');

describe('groups and policies view in Chromium (issue 16)', () => {
  const fixture = useSwtpms(4);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  let baseUrl: string;
  let browser: Browser;
  const tokens: Record<'admin' | 'viewer', { id: string; token: string }> = {} as never;
  const requested: string[] = [];
  const refusedResponses: string[] = [];
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    ds = await openDataSource(db.url);
    tokens.admin = await app.get(ApiTokens).issue('ui-admin', ['admin'], 'test');
    tokens.viewer = await app.get(ApiTokens).issue('ui-policy-viewer', ['inventory:read', 'policy:read'], 'test');
    await seedGroupsFleet(app, fixture, tokens.admin.token);
    browser = await chromium.launch(CHROMIUM);
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  const newPage = () => watchedPage(browser, { requested, refusedResponses, consoleErrors });

  const signIn = (page: Page, token: string) => signInWithToken(page, baseUrl, token);

  const api = (path: string) => request(app.getHttpServer()).get(path).set('Authorization', `Bearer ${tokens.admin.token}`);
  const audits = async (action: string) =>
    (await ds.query("SELECT actor, outcome, details->>'label' AS label FROM audit_log WHERE action = $1 ORDER BY id", [action])) as { actor: string; outcome: string; label: string }[];
  /** The text of each cell of a row, trimmed. */
  const cells = async (page: Page, table: string, row: string) =>
    (await page.getByRole('table', { name: new RegExp(table) }).getByRole('row').filter({ has: page.getByRole('rowheader', { name: row, exact: true }) }).locator('th, td').allTextContents()).map((t) => t.trim());
  /** Whether focus is inside an open dialog (a string: the test's tsconfig has no DOM types). */
  const focusedInDialog = (page: Page) => page.evaluate('document.activeElement !== null && document.activeElement.closest("dialog[open]") !== null');

  it('lists the groups with their counts, and shows a group: its set, mode, and failing machines with PCR 4 differing', async () => {
    const { context, page } = await newPage();
    await signIn(page, tokens.admin.token);
    await page.getByRole('link', { name: 'Groups', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Groups and policies' }).waitFor();
    await page.getByRole('table', { name: /2 groups/ }).waitFor();
    // Group, imported, attesting, attested, quarantined, revoked, failing, policy, interval.
    expect((await cells(page, '2 groups', 'racks')).slice(0, 8)).toEqual(['racks', '1', '0', '1', '3', '0', '3', 'enforce, 1 set']);
    expect((await cells(page, '2 groups', 'lab')).slice(0, 8)).toEqual(['lab', '1', '0', '0', '0', '0', '0', '⚠ no policy']);
    expect((await cells(page, '2 groups', 'racks'))[8]).toMatch(/\(fleet default\)$/);
    await page.screenshot({ path: join(SCREENSHOTS, 'groups-1-list.png'), fullPage: true });

    await page.getByRole('link', { name: 'racks', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Group racks' }).waitFor();
    await page.getByRole('table', { name: /^Set “current”, promoted from SN-CANARY/ }).waitFor();
    await expect(page.locator('dl.facts').textContent()).resolves.toContain('enforce (a mismatch quarantines)');
    const failing = page.getByRole('table', { name: /3 failing/ });
    await failing.waitFor();
    for (const serial of ['SN-B1', 'SN-B2', 'SN-C']) {
      const row = await cells(page, '3 failing', serial);
      expect([serial, row[1], row[2]?.startsWith('attestation.policy-mismatch'), row[4]]).toEqual([serial, '⚠ quarantined', true, '≠ PCR 4 (set “current”)']);
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'groups-2-group.png'), fullPage: true });
    await context.close();
  });

  it('promotes SN-B1 through the dialog: the preview names PCR 4 and recovers 2 of 3; confirmed, it is audited as the token and SN-B1 attests', async () => {
    const { context, page } = await newPage();
    await signIn(page, tokens.admin.token);
    await page.goto(`${baseUrl}/ui/#/groups/racks`);
    const opener = page.getByRole('button', { name: 'Promote SN-B1…' });
    await opener.click();
    const dialog = page.getByRole('dialog', { name: 'Promote a canary into group racks' });
    await dialog.waitFor();
    // Focus is in the dialog (its first field); Escape closes it, changes nothing, and focus returns.
    expect(await focusedInDialog(page)).toBe(true);
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await page.evaluate('document.activeElement && document.activeElement.getAttribute("aria-label")')).toBe('Promote SN-B1…');
    await opener.click();
    await expect(dialog.getByLabel('Machine (serial or id)').inputValue()).resolves.toBe('SN-B1');
    await dialog.getByLabel('Label of the new allowed set').fill('bootloader-b');
    await dialog.getByRole('button', { name: 'Preview' }).click();
    await dialog.getByText(/^Recovers 2 of 3 failing machines/).waitFor();
    await expect(dialog.locator('.recovers').textContent()).resolves.toMatch(/Recovers 2 of 3 failing machines at their next attestation .*: SN-B1, SN-B2\.$/);
    await expect(dialog.getByText(/^New values for PCR/).textContent()).resolves.toBe('New values for PCR 4: no current set has them.');
    const table = dialog.getByRole('table', { name: 'The new set against the current allowed sets' });
    await table.getByRole('columnheader', { name: 'Set “current” (1 differ)' }).waitFor();
    const differing = await table.locator('tbody tr').filter({ hasText: '≠ differs' }).locator('th').allTextContents();
    expect(differing).toEqual(['4']);
    expect(await table.locator('tbody tr').filter({ has: page.getByRole('rowheader', { name: '4', exact: true }) }).locator('code').textContent()).toBe(sha256Values(LOG_B)['4']);
    await page.screenshot({ path: join(SCREENSHOTS, 'groups-3-promote-preview.png'), fullPage: true });
    expect(await audits('policy.promoted')).toHaveLength(1);

    await dialog.getByRole('button', { name: 'Confirm promotion' }).click();
    await page.getByRole('status').filter({ hasText: 'Promoted SN-B1: set “bootloader-b” approved.' }).waitFor();
    await page.getByRole('table', { name: /^Set “bootloader-b”, promoted from SN-B1/ }).waitFor();
    expect((await audits('policy.promoted')).slice(1)).toEqual([{ actor: `token:${tokens.admin.id}`, outcome: 'success', label: 'bootloader-b' }]);
    // The machine recovers at its next attestation, as the preview said; so does SN-B2, not SN-C.
    expect((await attestOnce(app, fixture.at(1), LOG_B)).body.state).toBe('attested');
    expect(((await api('/v1/machines/SN-B1')).body as MachineDetail).state).toBe('attested');
    // The machine's page links to its group.
    await page.goto(`${baseUrl}/ui/#/machines/SN-B1`);
    await page.getByRole('heading', { level: 1, name: 'Machine SN-B1' }).waitFor();
    await page.getByRole('link', { name: 'racks', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Group racks' }).waitFor();
    await page.getByRole('table', { name: /2 failing/ }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'groups-4-promoted.png'), fullPage: true });
    await context.close();
  });

  it('approves a boot state from stated values and withdraws it, each through its dialog, audited as the token', async () => {
    const { context, page } = await newPage();
    await signIn(page, tokens.admin.token);
    await page.goto(`${baseUrl}/ui/#/groups/racks`);
    await page.getByRole('button', { name: 'Approve a boot state…' }).click();
    const approve = page.getByRole('dialog', { name: 'Approve a boot state for group racks' });
    await approve.waitFor();
    expect(await focusedInDialog(page)).toBe(true);
    await approve.getByLabel('Label of the new allowed set').fill('bootloader-c');
    // Prefilled from the first set: the rollout changes PCR 4 only.
    await expect(approve.getByLabel('PCR 0', { exact: true }).inputValue()).resolves.toBe(sha256Values(LOG_C)['0']);
    await approve.getByLabel('PCR 4', { exact: true }).fill(sha256Values(LOG_C)['4']!);
    await approve.getByRole('button', { name: 'Review…' }).click();
    await approve.getByText(/^Approve set “bootloader-c”\?/).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'groups-5-approve.png'), fullPage: true });
    await approve.getByRole('button', { name: 'Approve', exact: true }).click();
    await page.getByRole('status').filter({ hasText: /^Set “bootloader-c” approved \(approval epoch \d+\)\.$/ }).waitFor();
    expect(await audits('policy.approved')).toEqual([{ actor: `token:${tokens.admin.id}`, outcome: 'success', label: 'bootloader-c' }]);
    const sets = async () => ((await api('/v1/groups/racks/policy')).body as GroupPolicy).policy.allowedSets.map((s) => s.label);
    expect(await sets()).toEqual(['current', 'bootloader-b', 'bootloader-c']);

    const withdrawButton = page.getByRole('button', { name: 'Withdraw set bootloader-c…' });
    await withdrawButton.click();
    const withdraw = page.getByRole('dialog', { name: 'Withdraw set “bootloader-c”?' });
    await withdraw.waitFor();
    // Cancel is focused first: Enter on it, like Escape, withdraws nothing.
    expect(await page.evaluate('document.activeElement && document.activeElement.textContent')).toBe('Cancel');
    await page.keyboard.press('Enter');
    await withdraw.waitFor({ state: 'detached' });
    await withdrawButton.click();
    await withdraw.waitFor();
    await page.keyboard.press('Escape');
    await withdraw.waitFor({ state: 'detached' });
    expect(await audits('policy.withdrawn')).toEqual([]);
    await withdrawButton.click();
    await page.screenshot({ path: join(SCREENSHOTS, 'groups-6-withdraw.png'), fullPage: true });
    await withdraw.getByRole('button', { name: 'Withdraw', exact: true }).click();
    await page.getByRole('status').filter({ hasText: /^Set “bootloader-c” withdrawn; the group's approval epoch is now \d+\.$/ }).waitFor();
    expect(await audits('policy.withdrawn')).toEqual([{ actor: `token:${tokens.admin.id}`, outcome: 'success', label: 'bootloader-c' }]);
    expect(await sets()).toEqual(['current', 'bootloader-b']);
    await context.close();
  });

  it('a policy:read session sees no promote, approve or withdraw control, and the API refuses its forged requests', async () => {
    const { context, page } = await newPage();
    await signIn(page, tokens.viewer.token);
    await page.goto(`${baseUrl}/ui/#/groups/racks`);
    await page.getByRole('table', { name: /^Set “bootloader-b”/ }).waitFor();
    // SN-B2 recovers at its next attestation (not run here), SN-C does not.
    await page.getByRole('table', { name: /2 failing/ }).waitFor();
    for (const name of [/^Promote/, /^Approve/, /^Withdraw/]) {
      expect([String(name), await page.getByRole('button', { name }).count()]).toEqual([String(name), 0]);
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'groups-7-viewer.png'), fullPage: true });
    const before = (await api('/v1/groups/racks/policy')).body as GroupPolicy;
    const forged = await page.evaluate(
      async ({ header, values }) => {
        const csrf = ((await (await fetch('/v1/session')).json()) as { csrfToken: string }).csrfToken;
        const send = async (method: string, path: string, body?: unknown) => {
          const response = await fetch(path, { method, headers: { [header]: csrf, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
          return [response.status, ((await response.json()) as { message?: string }).message];
        };
        return [
          await send('POST', '/v1/groups/racks/policy/promote', { machine: 'SN-C', label: 'forged' }),
          await send('POST', '/v1/groups/racks/policy/sets', { label: 'forged', values }),
          await send('DELETE', '/v1/groups/racks/policy/sets/current'),
        ];
      },
      { header: CSRF_HEADER, values: sha256Values(LOG_C) },
    );
    expect(forged).toEqual([
      [403, 'this token lacks the "policy:write" scope'],
      [403, 'this token lacks the "policy:write" scope'],
      [403, 'this token lacks the "policy:write" scope'],
    ]);
    expect(((await api('/v1/groups/racks/policy')).body as GroupPolicy).digest).toBe(before.digest);
    expect(await ds.query("SELECT count(*)::int AS n FROM audit_log WHERE action LIKE 'policy.%' AND actor = $1", [`token:${tokens.viewer.id}`])).toEqual([{ n: 0 }]);
    await context.close();
  });

  it('loaded nothing from anywhere but the control plane; the only refusals are the forged ones (and the session asked before sign-in)', () => {
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((url) => !url.startsWith(`${baseUrl}/`))).toEqual([]);
    expect([...new Set(refusedResponses)].sort()).toEqual([
      'DELETE /v1/groups/racks/policy/sets/current 403',
      'GET /v1/session 401',
      'POST /v1/groups/racks/policy/promote 403',
      'POST /v1/groups/racks/policy/sets 403',
    ]);
    expect(consoleErrors.filter((text) => !/status of (401|403)/.test(text))).toEqual([]);
  });
});
