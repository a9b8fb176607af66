import { loadConfig, type RacksealConfig } from '@rackseal/config';
import { testServices } from './services';

/** Environment for a rackseal process under test: real services, own database and queue prefix. */
export function testEnv(database: { url: string }, queuePrefix: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    RACKSEAL_ENV: 'test',
    DATABASE_URL: database.url,
    REDIS_URL: testServices().redisUrl,
    QUEUE_PREFIX: queuePrefix,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    // Suites and benchmarks send a fleet's requests from one address and one token in seconds: the
    // limits stay on (the limiter runs on every request) but out of their way. test/security sets its own.
    RATE_LIMIT_ADDRESS_PER_SECOND: '1000000',
    RATE_LIMIT_CREDENTIAL_PER_SECOND: '1000000',
    ...extra,
  };
}

export function testConfig(database: { url: string }, queuePrefix: string, extra: NodeJS.ProcessEnv = {}): RacksealConfig {
  return loadConfig(testEnv(database, queuePrefix, extra));
}
