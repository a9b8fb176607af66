export * from './exit-codes';
export * from './cli-error';
export * from './closed-output';
export * from './input-files';
export * from './command-tree';
export * from './run-command-line';
export * from './version';
