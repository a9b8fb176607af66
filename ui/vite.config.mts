import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

/**
 * The fleet dashboard (issue 16): served by the control plane at /ui from dist/ui
 * (apps/control-plane/src/ui/serve-ui.ts). Preact's JSX through esbuild's automatic runtime, so no
 * Babel; the operator API's types come from libs/api-contracts, declared once for server, CLI and UI.
 */
export default defineConfig({
  root: here('.'),
  base: '/ui/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  // @rackseal/audit/<file>: single pure files of libs/audit (the audit leaf's definition), never its index.
  resolve: {
    alias: [
      { find: '@rackseal/api-contracts', replacement: here('../libs/api-contracts/src/index.ts') },
      { find: /^@rackseal\/audit\/([a-z0-9-]+)$/, replacement: `${here('../libs/audit/src')}/$1.ts` },
    ],
  },
  build: {
    outDir: here('../dist/ui'),
    emptyOutDir: true,
    // Nothing inlined as data: URLs, so the CSP can keep every source to 'self'.
    assetsInlineLimit: 0,
    // No polyfill script: every browser the control plane supports has modulepreload.
    modulePreload: { polyfill: false },
    sourcemap: false,
    reportCompressedSize: true,
  },
  logLevel: 'warn',
});
