// Moved to demo/support/free-port.ts, which `npm run demo` runs on too; re-exported so the suites' imports stay (docs/decisions.md, "The demo").
export * from '../../demo/support/free-port';
