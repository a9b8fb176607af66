/**
 * The dashboard's static files (issue 16 item 1) as the control plane serves them from dist/ui (built
 * by `npm run build`, which jest's global setup runs first): the security headers on every answer, a
 * CSP with every source 'self' and nothing inline, year-long immutable caching for hashed assets
 * and revalidation for index.html, and nothing served that the build did not make.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { UI_BUILD_DIR } from '../apps/control-plane/src/ui/serve-ui';
import { createTestDatabase, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { repoRoot } from './support/repo-root';
import { testConfig } from './support/test-config';

describe('dashboard static files at /ui', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let app: INestApplication;
  const http = () => request(app.getHttpServer());
  const assets = readdirSync(join(UI_BUILD_DIR, 'assets'));
  const script = assets.find((name) => name.endsWith('.js'))!;
  const style = assets.find((name) => name.endsWith('.css'))!;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    app = await createControlPlane(testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' }));
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
    await prefix?.clear();
  });

  function expectSecurityHeaders(response: request.Response): void {
    const csp = String(response.headers['content-security-policy']);
    expect(csp.split('; ')).toEqual(
      expect.arrayContaining(["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self'", "frame-ancestors 'none'", "base-uri 'none'"]),
    );
    expect(csp).not.toMatch(/unsafe|data:|https?:/);
    expect(response.headers['x-content-type-options']).toBe('nosniff');
    expect(response.headers['x-frame-options']).toBe('DENY');
    expect(response.headers['referrer-policy']).toBe('no-referrer');
  }

  it('is built from ui/ into dist/ui: one script, one stylesheet, hashed names', () => {
    expect(UI_BUILD_DIR).toBe(join(repoRoot(), 'dist', 'ui'));
    expect(script).toMatch(/^index-[A-Za-z0-9_-]{8,}\.js$/);
    expect(style).toMatch(/^index-[A-Za-z0-9_-]{8,}\.css$/);
  });

  it('/ui redirects to /ui/, which is index.html, revalidated on every load, with no inline script or style and nothing from elsewhere', async () => {
    const bare = await http().get('/ui');
    expect([bare.status, bare.headers.location]).toEqual([301, '/ui/']);
    const index = await http().get('/ui/');
    expect(index.status).toBe(200);
    expect(index.headers['content-type']).toMatch(/^text\/html/);
    expect(index.headers['cache-control']).toBe('no-cache');
    expectSecurityHeaders(index);
    const html = index.text;
    expect(html).toBe(readFileSync(join(UI_BUILD_DIR, 'index.html'), 'utf8'));
    expect(html).toContain(`<script type="module" crossorigin src="/ui/assets/${script}"></script>`);
    expect(html).toContain(`href="/ui/assets/${style}"`);
    // Every <script> has a src (nothing inline for the CSP to refuse), no style attribute or element, no other host.
    expect(html.match(/<script\b[^>]*>/g)?.every((tag) => tag.includes('src="/ui/assets/'))).toBe(true);
    expect(html).not.toMatch(/<style|style=|https?:\/\//);
  });

  it('hashed assets are cached for a year, immutable, with their type and the same headers', async () => {
    const js = await http().get(`/ui/assets/${script}`);
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toMatch(/javascript/);
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expectSecurityHeaders(js);
    expect(Buffer.from(js.text).equals(readFileSync(join(UI_BUILD_DIR, 'assets', script)))).toBe(true);
    const css = await http().get(`/ui/assets/${style}`);
    expect([css.status, css.headers['cache-control']]).toEqual([200, 'public, max-age=31536000, immutable']);
    expect(css.headers['content-type']).toMatch(/^text\/css/);
  });

  it('serves nothing else: unknown assets and paths out of the directory are 404s, other methods are not files', async () => {
    expect((await http().get('/ui/assets/index-AAAAAAAAAA.js')).status).toBe(404);
    expect((await http().get('/ui/../package.json')).status).toBe(404);
    expect((await http().get('/ui/%2e%2e/%2e%2e/package.json')).status).toBe(404);
    expect((await http().get('/ui/src/main.tsx')).status).toBe(404);
    const post = await http().post('/ui/').set('Content-Type', 'application/json').send('{}');
    expect(post.status).toBe(404);
    expect(post.body).toMatchObject({ code: 'route.not-found' });
  });
});
