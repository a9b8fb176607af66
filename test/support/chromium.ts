import type { LaunchOptions } from 'playwright-core';

/**
 * Debian's Chromium as the suites and benches launch it through playwright-core: headless, as root
 * (no sandbox), no GPU, and none of the browser's own traffic (component updates, sync, background
 * networking), so a page loads only what the control plane serves.
 */
export const CHROMIUM: LaunchOptions = {
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
};
