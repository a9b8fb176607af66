// Moved to demo/support/tpm2-tools.ts, which `npm run demo` runs on too; re-exported so the suites' imports stay (docs/decisions.md, "The demo").
export * from '../../demo/support/tpm2-tools';
