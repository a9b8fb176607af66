// Moved to demo/support/cli-runner.ts, which `npm run demo` runs on too; re-exported so the suites' imports stay (docs/decisions.md, "The demo").
export * from '../../demo/support/cli-runner';
