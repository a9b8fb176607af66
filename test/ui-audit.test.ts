/**
 * The dashboard's Audit view in a real browser (issue 16): Debian's Chromium driven by
 * playwright-core against a control plane on real PostgreSQL and Redis, the records sequenced and
 * signed by the worker's sequencer in-process. The records table filters by action, actor, subject
 * and time (the API's filters, also checked over HTTP with their refusals); a record's page shows
 * its fields as escaped JSON; "Verify inclusion" checks the proof and the checkpoint signature in
 * the browser and says "Verified" with the signed root; with the answers tampered in flight
 * (page.route) — the record, a proof node, the checkpoint's signature — or another pinned key it
 * says "Failed" and why. A session without audit:read has no Audit item and the API refuses it.
 * Screenshots go to test-artifacts/ui/ (gitignored).
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import type { AuditCheckpointView, AuditRecordView } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import { type AuditEntry, AuditLog, generateAuditSigningKey } from '@rackseal/audit';
import type { RacksealConfig } from '@rackseal/config';
import { Clock } from '@rackseal/platform';
import { type Browser, chromium, type Page } from 'playwright-core';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { testSequencer } from './support/audit-tree';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { repoRoot } from './support/repo-root';
import { testConfig } from './support/test-config';
import { CHROMIUM, signInWithToken, watchedPage } from './support/chromium';

jest.setTimeout(180_000);

const SCREENSHOTS = join(repoRoot(), 'test-artifacts', 'ui');

/** Records at known instants, one minute apart from 2026-01-01T10:00Z. */
class StepClock extends Clock {
  at = Date.parse('2026-01-01T10:00:00.000Z');
  now(): Date {
    const now = new Date(this.at);
    this.at += 60_000;
    return now;
  }
}

/** Markup in a record's details: the page must show it as text. */
const MARKUP = '<img src=x onerror="window.__pwned=1">';

const ENTRIES: AuditEntry[] = [
  { actor: 'token:7', action: 'machine.state-changed', subject: 'machine:SN-1', outcome: 'success', details: { from: 'attesting', to: 'attested' } }, // 10:00
  { actor: 'system:worker', action: 'secret.released', subject: 'machine:SN-1', outcome: 'success', details: { name: 'disk', version: 2 } }, // 10:01
  { actor: 'token:7', action: 'machine.state-changed', subject: 'machine:SN-2', outcome: 'success', details: { from: 'attesting', to: 'quarantined', note: MARKUP } }, // 10:02
  { actor: 'token:8', action: 'machine.state-changed', subject: 'machine:SN-3', outcome: 'refused', details: { code: 'machine.revoked' } }, // 10:03
  { actor: 'system:worker', action: 'secret.released', subject: 'machine:SN-2', outcome: 'success', details: { name: 'disk', version: 3 } }, // 10:04
];

describe('dashboard audit view in Chromium (issue 16)', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let config: RacksealConfig;
  let app: INestApplication;
  let ds: DataSource;
  let baseUrl: string;
  let browser: Browser;
  let checkpoint: AuditCheckpointView;
  const tokens: Record<'auditor' | 'viewer', { id: string; token: string }> = {} as never;
  const requested: string[] = [];
  const refusedResponses: string[] = [];
  const consoleErrors: string[] = [];

  const http = (token: string) => (path: string) => request(app.getHttpServer()).get(path).set('Authorization', `Bearer ${token}`);
  const rowsOf = (body: unknown) => (body as AuditRecordView[]).filter((r) => r.actor !== 'test').map((r) => `${r.seq ?? 'pending'} ${r.action} ${r.actor} ${r.subject}`);

  beforeAll(async () => {
    mkdirSync(SCREENSHOTS, { recursive: true });
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    config = testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' });
    app = await createControlPlane(config);
    await app.listen(0, '127.0.0.1');
    baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    ds = await openDataSource(db.url);
    // The overview (the landing view after sign-in) needs inventory:read.
    tokens.auditor = await app.get(ApiTokens).issue('ui-auditor', ['audit:read', 'inventory:read'], 'test');
    tokens.viewer = await app.get(ApiTokens).issue('ui-viewer', ['inventory:read'], 'test');
    const audit = new AuditLog(ds, new StepClock());
    for (const entry of ENTRIES) {
      await audit.append(entry);
    }
    const sequencer = testSequencer(ds, config.masterKey.key!, { origin: config.audit.origin });
    try {
      await sequencer.drainOnce();
    } finally {
      await sequencer.stop();
    }
    // One more after the checkpoint: pending, nothing to verify yet.
    await audit.append({ actor: 'token:8', action: 'secret.released', subject: 'machine:SN-3', outcome: 'success', details: {} });
    checkpoint = (await http(tokens.auditor.token)('/v1/audit/checkpoint')).body as AuditCheckpointView;
    browser = await chromium.launch(CHROMIUM);
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  /** The seq of the test's record `i` (0-based in ENTRIES): after the two token issues' records. */
  const seqOf = async (i: number): Promise<number> => {
    const records = (await http(tokens.auditor.token)('/v1/audit?limit=100')).body as AuditRecordView[];
    return records.filter((r) => r.actor !== 'test')[i]!.seq!;
  };

  const newPage = () => watchedPage(browser, { requested, refusedResponses, consoleErrors });

  const signIn = (page: Page, token: string) => signInWithToken(page, baseUrl, token);

  /** Opens record `seq`'s page from the table and asks for verification; answers the verdict line. */
  async function verifyRecord(page: Page, seq: number): Promise<string> {
    await page.goto(`${baseUrl}/ui/#/audit`);
    await page.getByRole('link', { name: `Record ${seq}`, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: `Audit record ${seq}` }).waitFor();
    await page.getByRole('button', { name: 'Verify inclusion' }).click();
    const verdict = page.getByRole('status').filter({ hasText: /Verified|Failed/ });
    await verdict.waitFor();
    return (await verdict.textContent()) ?? '';
  }

  it('GET /v1/audit filters by action, actor, subject and time window, and refuses bad filters with 400 naming them', async () => {
    const get = http(tokens.auditor.token);
    const seq1 = await seqOf(0);
    expect(rowsOf((await get('/v1/audit?action=secret.released')).body)).toEqual([
      `${seq1 + 1} secret.released system:worker machine:SN-1`,
      `${seq1 + 4} secret.released system:worker machine:SN-2`,
      'pending secret.released token:8 machine:SN-3',
    ]);
    expect(rowsOf((await get('/v1/audit?action=machine.state-changed&actor=token:7')).body)).toEqual([
      `${seq1} machine.state-changed token:7 machine:SN-1`,
      `${seq1 + 2} machine.state-changed token:7 machine:SN-2`,
    ]);
    expect(rowsOf((await get('/v1/audit?subject=machine:SN-2')).body)).toEqual([
      `${seq1 + 2} machine.state-changed token:7 machine:SN-2`,
      `${seq1 + 4} secret.released system:worker machine:SN-2`,
    ]);
    // since ≤ recordedAt < until, the offsets honoured: 10:01Z up to (not including) 12:03+02:00 = 10:03Z.
    expect(rowsOf((await get('/v1/audit?since=2026-01-01T10:01:00Z&until=2026-01-01T12:03:00%2B02:00')).body)).toEqual([
      `${seq1 + 1} secret.released system:worker machine:SN-1`,
      `${seq1 + 2} machine.state-changed token:7 machine:SN-2`,
    ]);
    // Paging within a filter: after the first match's id.
    const first = ((await get('/v1/audit?action=secret.released&limit=1')).body as AuditRecordView[])[0]!;
    expect(rowsOf((await get(`/v1/audit?action=secret.released&limit=1&after=${first.id}`)).body)).toEqual([`${seq1 + 4} secret.released system:worker machine:SN-2`]);
    expect((await get('/v1/audit?actor=nobody')).body).toEqual([]);
    // Newest first, paged down with before; before and after bound either order.
    expect(rowsOf((await get('/v1/audit?order=newest&actor=token:7')).body)).toEqual([
      `${seq1 + 2} machine.state-changed token:7 machine:SN-2`,
      `${seq1} machine.state-changed token:7 machine:SN-1`,
    ]);
    const newest = (await get('/v1/audit?order=newest&action=secret.released&limit=2')).body as AuditRecordView[];
    expect(rowsOf(newest)).toEqual(['pending secret.released token:8 machine:SN-3', `${seq1 + 4} secret.released system:worker machine:SN-2`]);
    expect(rowsOf((await get(`/v1/audit?order=newest&action=secret.released&before=${newest[1]!.id}`)).body)).toEqual([`${seq1 + 1} secret.released system:worker machine:SN-1`]);
    expect(rowsOf((await get(`/v1/audit?after=${newest[1]!.id - 4}&before=${newest[1]!.id}`)).body).map((r) => r.split(' ')[0])).toEqual([1, 2, 3].map((n) => String(seq1 + n)));

    for (const [query, message] of [
      ['since=2026-01-01T10:00:00', 'since must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T10:00:00Z'],
      ['until=yesterday', 'until must be an RFC 3339 date-time with an offset, e.g. 2026-03-01T10:00:00Z'],
      ['action=a%1Bb', 'action must not contain control characters (found U+001B)'],
      [`subject=${'s'.repeat(501)}`, 'subject must be shorter than or equal to 500 characters'],
      ['actor=a&actor=b', 'actor must be a string'],
      ['order=desc', 'order must be one of the following values: oldest, newest'],
      ['before=0', 'before must be an integer from 1 to 9007199254740991'],
    ] as const) {
      const refused = await get(`/v1/audit?${query}`);
      expect([query, refused.status, refused.body.message]).toEqual([query, 400, expect.arrayContaining([message])]);
    }
  });

  it('lists, filters by action, shows a record as escaped JSON, and verifies its inclusion in the browser against the signed root', async () => {
    const { context, page } = await newPage();
    await signIn(page, tokens.auditor.token);
    const seq1 = await seqOf(0);
    await page.getByRole('link', { name: 'Audit', exact: true }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Audit log' }).waitFor();
    await page.getByRole('table', { name: /Audit records, newest first/ }).waitFor();

    await page.getByLabel('Action').fill('machine.state-changed');
    await page.getByLabel('Action').press('Enter');
    const table = page.getByRole('table', { name: /action machine.state-changed/ });
    await table.waitFor();
    const rows = table.locator('tbody tr');
    const inOrder = [
      expect.stringMatching(new RegExp(`^${seq1}2026-01-01 10:00:00 UTCtoken:7machine\\.state-changedmachine:SN-1success$`)),
      expect.stringMatching(new RegExp(`^${seq1 + 2}2026-01-01 10:02:00 UTCtoken:7machine\\.state-changedmachine:SN-2success$`)),
      expect.stringMatching(new RegExp(`^${seq1 + 3}2026-01-01 10:03:00 UTCtoken:8machine\\.state-changedmachine:SN-3refused$`)),
    ];
    expect(await rows.allTextContents()).toEqual([...inOrder].reverse());
    expect(page.url()).toContain('#/audit?action=machine.state-changed');
    // Oldest first, the filter kept.
    await page.getByLabel('Order').selectOption('oldest');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('table', { name: /oldest first, action machine.state-changed/ }).waitFor();
    expect(await page.getByRole('table', { name: /oldest first/ }).locator('tbody tr').allTextContents()).toEqual(inOrder);
    await page.screenshot({ path: join(SCREENSHOTS, 'audit-1-filtered.png'), fullPage: true });

    // A time window through the form (UTC), combined with the action.
    await page.getByLabel('From (UTC)').fill('2026-01-01T10:02');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.getByRole('table', { name: /since 2026-01-01T10:02Z/ }).waitFor();
    expect(await page.getByRole('table', { name: /since/ }).locator('tbody tr').count()).toBe(2);

    // The record with markup in its details: shown as text, never as markup.
    await page.getByRole('link', { name: `Record ${seq1 + 2}`, exact: true }).click();
    await page.getByRole('heading', { level: 1, name: `Audit record ${seq1 + 2}` }).waitFor();
    const json = await page.locator('pre.json').textContent();
    expect(JSON.parse(json ?? '')).toMatchObject({ seq: seq1 + 2, action: 'machine.state-changed', details: { note: MARKUP } });
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate('window.__pwned')).toBeUndefined();

    await page.getByRole('button', { name: 'Verify inclusion' }).click();
    const verdict = page.getByRole('status').filter({ hasText: /Verified|Failed/ });
    await verdict.waitFor();
    expect(await verdict.textContent()).toBe(`✓ Verified: record ${seq1 + 2} is in the signed log of ${checkpoint.treeSize} records.`);
    const steps = await page.getByRole('list', { name: 'Verification steps' }).locator('li').allTextContents();
    expect(steps.map((s) => s.split(' — ')[0])).toEqual([
      'Log verifier key: ✓ passed',
      'Checkpoint signature: ✓ passed',
      'Signed checkpoint: ✓ passed',
      'Record leaf hash: ✓ passed',
      'Inclusion proof (RFC 9162 §2.1.3.2): ✓ passed',
    ]);
    const facts = async (name: string) => page.locator('dl.hashes dt', { hasText: name }).locator('xpath=following-sibling::dd[1]').textContent();
    expect(await facts('Root from the proof')).toBe(checkpoint.rootHash);
    expect(await facts('Root the checkpoint signs')).toBe(checkpoint.rootHash);
    const record = ((await http(tokens.auditor.token)(`/v1/audit/records/${seq1 + 2}/proof`)).body as { record: AuditRecordView }).record;
    expect(await facts('Leaf hash (recomputed)')).toBe(record.leafHash);
    const [key] = (await http(tokens.auditor.token)('/v1/audit/public-keys')).body as { verifierKey: string; keyId: string }[];
    expect(await facts('Verifier key (served by this control plane)')).toBe(key!.verifierKey);
    expect(await facts('Key ID')).toBe(key!.keyId);
    await page.screenshot({ path: join(SCREENSHOTS, 'audit-2-verified.png'), fullPage: true });

    // The operator's pinned key (the same one, pasted): verified, and said to be the pinned one.
    await page.getByLabel('Pinned verifier key (optional)').fill(key!.verifierKey);
    await page.getByRole('button', { name: 'Verify inclusion' }).click();
    await page.locator('dl.hashes dt', { hasText: 'pinned by you' }).waitFor();
    expect(await verdict.textContent()).toMatch(/^✓ Verified/);

    // Pending: nothing to verify.
    const pending = ((await http(tokens.auditor.token)('/v1/audit?actor=token:8&action=secret.released')).body as AuditRecordView[])[0]!;
    await page.goto(`${baseUrl}/ui/#/audit/${pending.id}`);
    await page.getByRole('heading', { level: 1, name: `Audit record id ${pending.id} (pending)` }).waitFor();
    expect(await page.getByRole('button', { name: 'Verify inclusion' }).count()).toBe(0);
    await context.close();
  });

  it('says "Failed" and why when the record, a proof node or the checkpoint signature is tampered in flight, or another key is pinned', async () => {
    const { context, page } = await newPage();
    await signIn(page, tokens.auditor.token);
    const seq = await seqOf(1);

    // A proof node changed.
    await page.route('**/v1/audit/records/*/proof', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { proof: string[] };
      body.proof[0] = `${body.proof[0]![0] === '0' ? '1' : '0'}${body.proof[0]!.slice(1)}`;
      await route.fulfill({ response, json: body });
    });
    expect(await verifyRecord(page, seq)).toMatch(/^✕ Failed: Inclusion proof \(RFC 9162 §2\.1\.3\.2\): the proof leads to root [0-9a-f]{64}, not the signed root [0-9a-f]{64}: the record or the proof was changed$/);
    expect(await page.locator('dl.hashes dt', { hasText: 'Root from the proof' }).locator('xpath=following-sibling::dd[1]').textContent()).not.toBe(checkpoint.rootHash);
    await page.screenshot({ path: join(SCREENSHOTS, 'audit-3-tampered-proof.png'), fullPage: true });
    await page.unrouteAll();

    // The record changed on its way to the page (what is displayed is what is verified).
    await page.route(/\/v1\/audit\?after=\d+&limit=1$/, async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as AuditRecordView[];
      await route.fulfill({ response, json: body.map((r) => ({ ...r, details: { ...r.details, version: 99 } })) });
    });
    expect(await verifyRecord(page, seq)).toMatch(/^✕ Failed: Inclusion proof .*: the proof leads to root [0-9a-f]{64}, not the signed root/);
    expect(await page.locator('pre.json').textContent()).toContain('"version": 99');
    await page.screenshot({ path: join(SCREENSHOTS, 'audit-4-tampered-record.png'), fullPage: true });
    await page.unrouteAll();

    // The checkpoint's signature changed.
    await page.route('**/v1/audit/records/*/proof', async (route) => {
      const response = await route.fetch();
      const body = (await response.json()) as { checkpoint: { note: string } };
      const note = body.checkpoint.note;
      const space = note.lastIndexOf(' ');
      const signature = Buffer.from(note.slice(space + 1, -1), 'base64');
      signature[20] = signature[20]! ^ 0x80;
      body.checkpoint.note = `${note.slice(0, space + 1)}${signature.toString('base64')}\n`;
      await route.fulfill({ response, json: body });
    });
    expect(await verifyRecord(page, seq)).toMatch(/^✕ Failed: Checkpoint signature: the signature by \S+ does not verify: the checkpoint was modified or not signed by that key$/);
    const steps = await page.getByRole('list', { name: 'Verification steps' }).locator('li').allTextContents();
    expect(steps.map((s) => s.split(' — ')[0])).toEqual([
      'Log verifier key: ✓ passed',
      'Checkpoint signature: ✕ failed',
      'Signed checkpoint: – not checked',
      'Record leaf hash: – not checked',
      'Inclusion proof (RFC 9162 §2.1.3.2): – not checked',
    ]);
    await page.screenshot({ path: join(SCREENSHOTS, 'audit-5-tampered-signature.png'), fullPage: true });
    await page.unrouteAll();

    // Untampered answers, but the operator pinned another key (a log under the same name, another key).
    const other = generateAuditSigningKey(config.audit.origin).verifierKey;
    await page.getByLabel('Pinned verifier key (optional)').fill(other);
    await page.getByRole('button', { name: 'Verify inclusion' }).click();
    await page.locator('dl.hashes dt', { hasText: 'pinned by you' }).waitFor();
    expect(await page.getByRole('status').filter({ hasText: /Verified|Failed/ }).textContent()).toMatch(/^✕ Failed: Checkpoint signature: the checkpoint has no signature by \S+ \(signed by: \S+\)$/);
    await page.screenshot({ path: join(SCREENSHOTS, 'audit-6-other-key.png'), fullPage: true });
    await context.close();
  });

  it('a session without audit:read has no Audit item, and the API refuses its session', async () => {
    const { context, page } = await newPage();
    await signIn(page, tokens.viewer.token);
    await page.getByRole('link', { name: 'Machines', exact: true }).waitFor();
    expect(await page.getByRole('link', { name: 'Audit', exact: true }).count()).toBe(0);
    await page.goto(`${baseUrl}/ui/#/audit`);
    await expect(page.getByRole('alert').textContent()).resolves.toBe('Could not load audit records: this token lacks the "audit:read" scope');
    const statuses = await page.evaluate(async () => Promise.all(['/v1/audit', '/v1/audit/records/1/proof', '/v1/audit/checkpoint', '/v1/audit/public-keys'].map(async (p) => (await fetch(p)).status)));
    expect(statuses).toEqual([403, 403, 403, 403]);
    await page.screenshot({ path: join(SCREENSHOTS, 'audit-7-no-scope.png'), fullPage: true });
    await context.close();
  });

  it('loaded nothing from anywhere but the control plane, and the only failed loads and console errors are the provoked refusals (and the signed-out page asking for its session)', () => {
    expect(requested.length).toBeGreaterThan(10);
    expect(requested.filter((url) => !url.startsWith(`${baseUrl}/`))).toEqual([]);
    expect([...new Set(refusedResponses)].sort()).toEqual(['GET /v1/audit 403', 'GET /v1/audit/checkpoint 403', 'GET /v1/audit/public-keys 403', 'GET /v1/audit/records/1/proof 403', 'GET /v1/session 401']);
    expect(consoleErrors.filter((text) => !/status of (401|403)/.test(text))).toEqual([]);
  });
});
