import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SESSION_COOKIE } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import { chromium } from 'playwright-core';
import { CHROMIUM } from '../test/support/chromium';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { createTestDatabase, openDataSource } from '../test/support/database';
import { TEST_ADMIN_DATABASE_URL, TEST_REDIS_URL } from '../test/support/services';
import { testConfig } from '../test/support/test-config';
import { formatTable } from './measure';

/** The flags Debian's Chromium needs on these machines (as test/ui-dashboard.test.ts). */

/** The little of the page's DOM the wait reads. */
interface PageGlobals {
  readonly document: { querySelector(selector: string): { readonly textContent: string | null } | null };
}

interface Sample {
  /** Navigation start → first contentful paint (the "Loading…" line or the first view). */
  readonly fcpMs: number;
  /** Navigation start → the overview's machines-by-state table in the DOM, filled from the API. */
  readonly overviewMs: number;
}

const quantile = (values: readonly number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
};

/**
 * Issue 16: the dashboard's first render in Debian's Chromium against an in-process control plane
 * (real PostgreSQL and Redis) whose fleet has UI_BENCH_MACHINES machines (default 10,000) in every
 * state. Signed in (the session cookie set), each run opens /ui/ and times, from the browser's
 * navigation start, the first contentful paint and the overview's table with the API's numbers in
 * it (rAF polling: ±1 frame). Cold: a fresh browser context each run (empty HTTP cache: index.html,
 * script, stylesheet, session and overview all fetched); warm: one context, the hashed assets from
 * its cache (immutable) and only index.html revalidated. Runs alternate cold and warm.
 */
export async function uiRenderBench(runs = Number(process.env.UI_BENCH_RUNS ?? 20), machines = Number(process.env.UI_BENCH_MACHINES ?? 10_000)): Promise<string> {
  process.env[TEST_ADMIN_DATABASE_URL] ??= process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  process.env[TEST_REDIS_URL] ??= 'redis://127.0.0.1:6379';
  const db = await createTestDatabase();
  const app = await createControlPlane(testConfig(db, `bench-ui-${randomBytes(4).toString('hex')}`, { LOG_LEVEL: 'silent' }));
  const ds = await openDataSource(db.url);
  const browser = await chromium.launch(CHROMIUM);
  try {
    await app.listen(0, '127.0.0.1');
    const baseUrl = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    await ds.query(
      `INSERT INTO machines (id, serial, group_name, ek_pub_hash, state, imported_at, updated_at)
       SELECT gen_random_uuid(), 'SN-' || lpad(i::text, 7, '0'), 'rack-' || (i % 50), encode(sha256(i::text::bytea), 'hex'),
              (ARRAY['imported', 'attested', 'attested', 'attested', 'quarantined', 'revoked'])[1 + i % 6]::text, now(), now()
         FROM generate_series(1, $1) AS i`,
      [machines],
    );
    const { token } = await app.get(ApiTokens).issue('bench-ui', ['inventory:read'], 'bench');
    const signIn = await fetch(`${baseUrl}/v1/session`, { method: 'POST', headers: { 'Content-Type': 'application/json', Origin: baseUrl }, body: JSON.stringify({ token }) });
    const secret = /rackseal_session=([^;]*)/.exec(signIn.headers.get('set-cookie') ?? '')?.[1];
    if (signIn.status !== 200 || secret === undefined) {
      throw new Error(`sign-in failed: ${signIn.status}`);
    }
    const cookie = { name: SESSION_COOKIE, value: secret, url: baseUrl };
    const warmContext = await browser.newContext();
    await warmContext.addCookies([cookie]);

    const open = async (context: Awaited<ReturnType<typeof browser.newContext>>): Promise<Sample> => {
      const page = await context.newPage();
      await page.goto(`${baseUrl}/ui/`);
      // A function, not a string: the dashboard's CSP refuses eval. Typed by hand, as this file is compiled without the DOM's types.
      await page.waitForFunction(
        () => ((globalThis as unknown as PageGlobals).document.querySelector('table caption')?.textContent ?? '').endsWith(' machines'),
        undefined,
        { polling: 'raf' },
      );
      const sample = await page.evaluate(() => ({
        overviewMs: performance.now(),
        fcpMs: performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? Number.NaN,
      }));
      await page.close();
      return sample;
    };

    await open(warmContext);
    const cold: Sample[] = [];
    const warm: Sample[] = [];
    for (let i = 0; i < runs; i += 1) {
      const context = await browser.newContext();
      await context.addCookies([cookie]);
      cold.push(await open(context));
      await context.close();
      warm.push(await open(warmContext));
    }
    await warmContext.close();
    const row = (label: string, samples: readonly Sample[], key: keyof Sample): string[] => [
      label,
      quantile(samples.map((s) => s[key]), 0.5).toFixed(0),
      quantile(samples.map((s) => s[key]), 0.9).toFixed(0),
      Math.max(...samples.map((s) => s[key])).toFixed(0),
    ];
    return [
      `${runs} runs each, ${machines} machines, Chromium ${browser.version()}, playwright-core; milliseconds from navigation start.`,
      '',
      formatTable([
        ['what', 'p50 ms', 'p90 ms', 'max ms'],
        row('cold cache: first contentful paint', cold, 'fcpMs'),
        row('cold cache: overview with its numbers', cold, 'overviewMs'),
        row('warm cache: first contentful paint', warm, 'fcpMs'),
        row('warm cache: overview with its numbers', warm, 'overviewMs'),
      ]),
    ].join('\n');
  } finally {
    await browser.close();
    await app.close();
    await ds.destroy();
    await db.drop();
  }
}
