import type { Browser, BrowserContext, LaunchOptions, Page } from 'playwright-core';

/**
 * Debian's Chromium as the suites and benches launch it through playwright-core: headless, as root
 * (no sandbox), no GPU, and none of the browser's own traffic (component updates, sync, background
 * networking), so a page loads only what the control plane serves.
 */
export const CHROMIUM: LaunchOptions = {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};

/** What a suite's pages asked for and what went wrong, checked at its end (nothing from elsewhere, no refusal unprovoked). */
export interface PageWatch {
  /** Every URL the pages asked for. */
  readonly requested: string[];
  /** Every answer of 400 or more, as `METHOD /path STATUS`. */
  readonly refusedResponses: string[];
  /** Every console error and uncaught page error (a CSP refusal shows there). */
  readonly consoleErrors: string[];
}

/** A fresh browser context and page whose traffic and errors go into `watch`. */
export async function watchedPage(browser: Browser, watch: PageWatch, width = 1280): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width, height: 900 } });
  const page = await context.newPage();
  page.on('request', (r) => watch.requested.push(r.url()));
  page.on('response', (r) => r.status() >= 400 && watch.refusedResponses.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`));
  page.on('console', (m) => m.type() === 'error' && watch.consoleErrors.push(m.text()));
  page.on('pageerror', (e) => watch.consoleErrors.push(e.message));
  return { context, page };
}

/** Signs in through the dashboard's form with `token` and waits for the overview. */
export async function signInWithToken(page: Page, baseUrl: string, token: string): Promise<void> {
  await page.goto(`${baseUrl}/ui/`);
  await page.getByLabel('Operator token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Fleet overview' }).waitFor();
}
