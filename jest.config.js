/** @type {import('jest').Config} */
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
      keepClassNames: true,
    },
    module: { type: 'commonjs' },
    sourceMaps: 'inline',
  },
];

module.exports = {
  rootDir: __dirname,
  testEnvironment: 'node',
  // Unit specs live beside the code (*.spec.ts); suites against real services live in test/ (*.test.ts).
  testMatch: ['<rootDir>/apps/**/*.spec.ts', '<rootDir>/libs/**/*.spec.ts', '<rootDir>/test/**/*.test.ts'],
  transform: { '^.+\\.ts$': swc },
  // `@rackseal/command-line/<file>`: the agent's start-up path imports single files, not the index;
  // `@rackseal/config/secret-bytes`: SecretBytes without the config index (and its NestJS module).
  moduleNameMapper: {
    '^@rackseal/([a-z0-9-]+)$': '<rootDir>/libs/$1/src',
    '^@rackseal/command-line/([a-z0-9-]+)$': '<rootDir>/libs/command-line/src/$1',
    '^@rackseal/config/secret-bytes$': '<rootDir>/libs/config/src/secret-bytes',
  },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  setupFiles: ['reflect-metadata'],
  testTimeout: 120000,
  // Two cores: more workers than that only adds contention with PostgreSQL, Redis and swtpm.
  maxWorkers: 2,
  // Client libraries (ioredis, pg) keep short timers after disconnecting; children we spawn are
  // killed by test/support/exit-guard.ts, so ending the run promptly loses nothing.
  forceExit: true,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
};
