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
  // `@rackseal/<lib>/<file>`: one file of a library, not its index (tsconfig.json lists which libraries
  // allow it): the agent's start-up and boot unlock paths load only what they run
  // (docs/decisions.md "Boot unlock loads single files"); `@rackseal/config/secret-bytes`: SecretBytes
  // without the config index (and its NestJS module).
  moduleNameMapper: {
    '^@rackseal/([a-z0-9-]+)$': '<rootDir>/libs/$1/src',
    '^@rackseal/([a-z0-9-]+)/([a-z0-9/-]+)$': '<rootDir>/libs/$1/src/$2',
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
