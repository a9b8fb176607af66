// Moved to demo/support/repo-root.ts, which `npm run demo` runs on too; re-exported so the suites' imports stay (docs/decisions.md, "The demo").
export * from '../../demo/support/repo-root';
