/**
 * The fleet dashboard in a real browser (issue 16 acceptance, first slice): Debian's Chromium driven
 * by playwright-core against a control plane on real PostgreSQL and Redis, with machines attested
 * in-process on swtpm (test/support/attestation-agent.ts) — a canary promoted, and a second machine
 * whose PCR 4 was extended with another bootloader, quarantined. Signs in with a token, reads the
 * overview and the quarantined machine's page (PCR 4 marked as differing, the diverging event
 * named), asks a re-attestation (confirmed, audited as the token), signs out; then the refusals: no
 * cookie, a forged CSRF token, a token without inventory:write that sees no control and whose
 * session the API refuses. Keyboard reach and labels are checked; screenshots of each view go to
 * test-artifacts/ui/ (gitignored).
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { INestApplication } from '@nestjs/common';
import { CSRF_HEADER, type FleetOverview, type MachineEvidence, SESSION_COOKIE } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import { InventoryImporter } from '@rackseal/inventory';
import { nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { parseEventLog, replayEventLog } from '@rackseal/tpm2';
import { VendorCas } from '@rackseal/vendor-cas';
import { type Browser, chromium, type Page } from 'playwright-core';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { answer, b64, bootWith, withAgent } from './support/attestation-agent';
import { BOOT_APP_DIVERGENCE, FIRMWARE_LOG, otherBootloaderLog } from './support/bootloader-logs';
import { CHROMIUM, watchedPage } from './support/chromium';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { repoRoot } from './support/repo-root';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { testConfig } from './support/test-config';

jest.setTimeout(180_000);

const SCREENSHOTS = join(repoRoot(), 'test-artifacts', 'ui');

/** What the canary's firmware measured. */
const CANARY_LOG = FIRMWARE_LOG;
const SRTM = [0, 1, 2, 3, 4, 5, 6, 7];
const CANARY_VALUES = replayEventLog(parseEventLog(CANARY_LOG)).banks.get('sha256')!;
describe('fleet dashboard in Chromium (issue 16)', () => {
  const fixture = useSwtpms(2);
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  let ds: DataSource;
  let baseUrl: string;
  let browser: Browser;
  const tokens: Record<'admin' | 'viewer', { id: string; token: string }> = {} as never;
  /** Every URL the browser asked for, every answer of 400 or more, and every console error (a CSP refusal shows there). */
  const requested: string[] = [];
  const refusedResponses: string[] = [];
  const consoleErrors: string[] = [];

  async function attest(tpm: SwtpmMachine, log: Buffer): Promise<request.Response> {
    await tpm.reboot();
    await bootWith(tpm, log);
    return withAgent(tpm, 'rsa-2048', async (agent) => {
      const started = await request(app.getHttpServer()).post(nodeApiPath('attestations')).set('Content-Type', 'application/json').send({ ekCertificate: b64(agent.certificate), akPublic: agent.akPublic });
      expect(started.status).toBe(201);
      const start = started.body as StartAttestationResponse;
      const { body } = await answer(agent, start);
      return request(app.getHttpServer()).post(nodeApiPath(`attestations/${start.registrationId}/finish`)).set('Content-Type', 'application/json').send({ ...body, eventLog: b64(log) });
    });
  }

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    ds = await openDataSource(db.url);
    tokens.admin = await app.get(ApiTokens).issue('ui-admin', ['admin'], 'test');
    tokens.viewer = await app.get(ApiTokens).issue('ui-viewer', ['inventory:read', 'policy:read'], 'test');

    await app.get(VendorCas).addBundle([{ content: await fixture.ca.rootCertPem(), source: 'root' }, { content: await fixture.ca.intermediateCertPem(), source: 'intermediate' }], { addedBy: 'test' });
    const spare = () => fixture.ca.issueEkCert(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey);
    const csv = [
      'serial,asset_tag,hostname,group,ek_cert,ek_pub_hash',
      `SN-CANARY,A-1,canary.racks,racks,${b64(await fixture.at(0).rsaEkCertDer())},`,
      `SN-SECOND,A-2,second.racks,racks,${b64(await fixture.at(1).rsaEkCertDer())},`,
      `SN-NEVER,A-3,never.racks,racks,${b64(await spare())},`,
    ].join('\n');
    expect(await app.get(InventoryImporter).import(Readable.from([Buffer.from(`${csv}\n`)]), { actor: 'test', fileName: 'inventory.csv' })).toMatchObject({ status: 'succeeded' });
    // The canary flow: quarantined without a policy, promoted, attested; the second machine boots another bootloader.
    expect((await attest(fixture.at(0), CANARY_LOG)).body.code).toBe('attestation.no-policy');
    const promoted = await request(app.getHttpServer()).post('/v1/groups/racks/policy/promote').set('Authorization', `Bearer ${tokens.admin.token}`).send({ machine: 'SN-CANARY', label: 'current' });
    expect(promoted.status).toBe(200);
    expect((await attest(fixture.at(0), CANARY_LOG)).body.state).toBe('attested');
    expect((await attest(fixture.at(1), otherBootloaderLog())).body.code).toBe('attestation.policy-mismatch');

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

  /** Signs in through the form, with the keyboard only. */
  async function signIn(page: Page, token: string): Promise<void> {
    await page.goto(`${baseUrl}/ui/`);
    const field = page.getByLabel('Operator token');
    await field.focus();
    await page.keyboard.type(token);
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Fleet overview' }).waitFor();
  }

  /** A state change as the page's own script would send it, with the header given. */
  const postFromPage = (page: Page, path: string, csrf: string | null) =>
    page.evaluate(
      async ({ path, csrf, header }) => {
        const response = await fetch(path, { method: 'POST', headers: csrf === null ? {} : { [header]: csrf }, credentials: 'same-origin' });
        return { status: response.status, body: (await response.json()) as { code?: string; message?: string } };
      },
      { path, csrf, header: CSRF_HEADER },
    );

  it('the overview and its API agree: machines by state, overdue, refusals by reason', async () => {
    const overview = (await request(app.getHttpServer()).get('/v1/fleet/overview').set('Authorization', `Bearer ${tokens.viewer.token}`)).body as FleetOverview;
    expect(overview.machinesByState).toEqual({ imported: 1, attesting: 0, attested: 1, quarantined: 1, revoked: 0 });
    expect(overview.refusals.byReason).toEqual(
      expect.arrayContaining([
        { action: 'attestation.refused', code: 'attestation.no-policy', count: 1 },
        { action: 'attestation.refused', code: 'attestation.policy-mismatch', count: 1 },
      ]),
    );
    // Overdue: the machines without a successful attestation within the interval (SN-NEVER, and
    // SN-SECOND, refused every time); the canary attested just now.
    expect(overview.overdue).toBe(2);
    const evidence = (await request(app.getHttpServer()).get('/v1/machines/SN-SECOND/evidence').set('Authorization', `Bearer ${tokens.viewer.token}`)).body as MachineEvidence;
    expect(evidence.bank).toBe('sha256');
    expect(Object.keys(evidence.values).map(Number)).toEqual(SRTM);
    expect(evidence.values['0']).toBe(CANARY_VALUES.get(0)!.toString('hex'));
    expect(evidence.values['4']).not.toBe(CANARY_VALUES.get(4)!.toString('hex'));
    const none = await request(app.getHttpServer()).get('/v1/machines/SN-NEVER/evidence').set('Authorization', `Bearer ${tokens.viewer.token}`);
    expect([none.status, none.body.code]).toEqual([409, 'policy.no-evidence']);
  });

  it('signs in, shows the overview, the machines and the quarantined machine with PCR 4 differing and its event named, requests a re-attestation, signs out', async () => {
    const { context, page } = await newPage();
    await page.goto(`${baseUrl}/ui/`);
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, '1-sign-in.png'), fullPage: true });
    await signIn(page, tokens.admin.token);

    const cookies = await context.cookies();
    expect(cookies.map(({ name, httpOnly, sameSite, secure, path }) => ({ name, httpOnly, sameSite, secure, path }))).toEqual([
      { name: SESSION_COOKIE, httpOnly: true, sameSite: 'Strict', secure: false, path: '/' },
    ]);
    // HttpOnly: the page's script cannot read it.
    expect(await page.evaluate('document.cookie')).toBe('');

    const byState = page.getByRole('table', { name: /machines$/ });
    await expect(byState.getByRole('row', { name: /quarantined/ }).textContent()).resolves.toMatch(/quarantined\s*1$/);
    await expect(byState.getByRole('row', { name: /attested/ }).first().textContent()).resolves.toMatch(/attested\s*1$/);
    await expect(page.getByRole('table', { name: /By action and reason/ }).textContent()).resolves.toContain('attestation.policy-mismatch');
    await expect(page.getByText('not attested within their group\'s interval').textContent()).resolves.toMatch(/^2 not attested/);
    await page.screenshot({ path: join(SCREENSHOTS, '2-overview.png'), fullPage: true });

    // Keyboard: the first Tab lands on the skip link, and the views are reachable as links.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement && document.activeElement.textContent')).toBe('Skip to content');
    await page.getByRole('link', { name: 'Machines', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Machines' }).waitFor();
    await page.getByRole('table', { name: /from the first serial/ }).waitFor();
    await page.getByLabel('State').selectOption('quarantined');
    await page.getByRole('button', { name: 'Filter' }).press('Enter');
    await page.getByRole('table', { name: /state quarantined/ }).waitFor();
    const rows = page.getByRole('table', { name: /state quarantined/ }).locator('tbody tr');
    await rows.filter({ hasText: 'SN-SECOND' }).waitFor();
    expect(await rows.count()).toBe(1);
    await expect(rows.first().textContent()).resolves.toContain('attestation.policy-mismatch');
    await page.screenshot({ path: join(SCREENSHOTS, '3-machines.png'), fullPage: true });

    await page.getByRole('link', { name: 'SN-SECOND' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Machine SN-SECOND' }).waitFor();
    await page.getByRole('heading', { name: 'Why its last attestation was refused' }).waitFor();
    await expect(page.getByRole('list', { name: 'Diverging events' }).textContent()).resolves.toContain(BOOT_APP_DIVERGENCE);
    const pcrTable = page.getByRole('table', { name: /allowed set/ });
    await pcrTable.waitFor();
    await pcrTable.getByRole('columnheader', { name: /Set “current” \(1 differ\)/ }).waitFor();
    for (const pcr of SRTM) {
      const row = pcrTable.getByRole('row').filter({ has: page.getByRole('rowheader', { name: String(pcr), exact: true }) });
      const text = await row.textContent();
      // Said in words (and a sign), not only by the highlight.
      expect([pcr, text?.includes(pcr === 4 ? '≠ differs' : '= matches')]).toEqual([pcr, true]);
    }
    await expect(pcrTable.locator('td.pcr-differs').count()).resolves.toBe(1);
    await expect(page.getByRole('table').filter({ hasText: 'When' }).textContent()).resolves.toContain('attesting → quarantined');
    await page.screenshot({ path: join(SCREENSHOTS, '4-machine-quarantined.png'), fullPage: true });

    // The gated control asks first; dismissing does nothing, accepting is audited as the token.
    const reattests = async () => (await ds.query("SELECT actor FROM audit_log WHERE action = 'machine.reattest-requested'")) as { actor: string }[];
    page.once('dialog', (dialog) => void dialog.dismiss());
    await page.getByRole('button', { name: 'Ask to re-attest now' }).click();
    expect(await reattests()).toEqual([]);
    page.once('dialog', (dialog) => void dialog.accept());
    await page.getByRole('button', { name: 'Ask to re-attest now' }).click();
    await page.getByRole('status').filter({ hasText: 'Re-attestation requested' }).waitFor();
    expect(await reattests()).toEqual([{ actor: `token:${tokens.admin.id}` }]);

    // A forged CSRF token and none are refused, from the signed-in page itself.
    const forged = await postFromPage(page, '/v1/machines/SN-SECOND/reattest', 'forged-csrf-token');
    expect([forged.status, forged.body.code]).toEqual([403, 'auth.forbidden']);
    expect((await postFromPage(page, '/v1/machines/SN-SECOND/reattest', null)).status).toBe(403);

    const secret = (await context.cookies())[0]!.value;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('status').filter({ hasText: 'Signed out.' }).waitFor();
    await page.getByLabel('Operator token').waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, '5-signed-out.png'), fullPage: true });
    expect(await context.cookies()).toEqual([]);
    expect((await request(app.getHttpServer()).get('/v1/fleet/overview').set('Cookie', `${SESSION_COOKIE}=${secret}`)).status).toBe(401);
    expect((await ds.query('SELECT count(*)::int AS n FROM operator_sessions WHERE token_id = $1', [tokens.admin.id]))[0].n).toBe(0);
    await context.close();
  });

  it('a token without inventory:write sees no re-attest control, and the API refuses its session anyway', async () => {
    const { context, page } = await newPage();
    await signIn(page, tokens.viewer.token);
    await page.goto(`${baseUrl}/ui/#/machines/SN-SECOND`);
    await page.getByRole('heading', { level: 1, name: 'Machine SN-SECOND' }).waitFor();
    await page.getByRole('table', { name: /allowed set/ }).waitFor();
    expect(await page.getByRole('button', { name: 'Ask to re-attest now' }).count()).toBe(0);
    await page.getByText('Needs the secrets:read scope.').waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, '6-machine-viewer.png'), fullPage: true });
    const csrf = await page.evaluate(async () => ((await (await fetch('/v1/session')).json()) as { csrfToken: string }).csrfToken);
    const refused = await postFromPage(page, '/v1/machines/SN-SECOND/reattest', csrf);
    expect([refused.status, refused.body.message]).toEqual([403, 'this token lacks the "inventory:write" scope']);
    await context.close();
  });

  it('without a session the API answers 401 and the dashboard shows the sign-in form', async () => {
    expect((await request(app.getHttpServer()).get('/v1/fleet/overview')).status).toBe(401);
    const { context, page } = await newPage();
    await page.goto(`${baseUrl}/ui/#/machines/SN-SECOND`);
    await page.getByLabel('Operator token').waitFor();
    const wrong = await page.evaluate(async () => (await fetch('/v1/machines')).status);
    expect(wrong).toBe(401);
    await page.getByLabel('Operator token').fill(`rks_${'A'.repeat(43)}`);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toContain('not valid');
    await context.close();
  });

  it('a crafted machine or group address (not percent-encoding) is said so, without a script error, and navigation still works', async () => {
    const { context, page } = await newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await signIn(page, tokens.viewer.token);
    await page.goto(`${baseUrl}/ui/#/machines/%E0%A4%A`);
    await expect(page.getByRole('alert').textContent()).resolves.toBe("Not a machine's address: %E0%A4%A");
    await page.goto(`${baseUrl}/ui/#/groups/%`);
    await expect(page.getByRole('alert').textContent()).resolves.toBe("Not a group's address: %");
    await page.getByRole('link', { name: 'Machines' }).click();
    await page.getByRole('heading', { level: 1, name: 'Machines' }).waitFor();
    expect(errors).toEqual([]);
    await context.close();
  });

  it('loaded nothing from anywhere but the control plane, and the CSP refused nothing', () => {
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((url) => !url.startsWith(`${baseUrl}/`))).toEqual([]);
    // The refusals the tests caused on purpose are the only failed loads, and the only console errors.
    expect([...new Set(refusedResponses)].sort()).toEqual(['GET /v1/machines 401', 'GET /v1/session 401', 'POST /v1/machines/SN-SECOND/reattest 403', 'POST /v1/session 401']);
    expect(consoleErrors.filter((text) => !/status of (401|403)/.test(text))).toEqual([]);
  });
});
