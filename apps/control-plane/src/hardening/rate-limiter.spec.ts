import { loadConfig } from '@rackseal/config';
import { RateLimiter } from './rate-limiter';

/** Nothing listens on port 1: a Redis that cannot be reached. */
const config = (extra: NodeJS.ProcessEnv = {}) =>
  loadConfig({ RACKSEAL_ENV: 'test', REDIS_URL: 'redis://127.0.0.1:1', QUEUE_PREFIX: 'fleet-a', RATE_LIMIT_ADDRESS_PER_SECOND: '5', RATE_LIMIT_CREDENTIAL_PER_SECOND: '0', ...extra });

describe('RateLimiter', () => {
  it('keeps its buckets under the deployment\'s hash tag', () => {
    const limiter = new RateLimiter(config());
    expect(limiter.keyOf('address', '10.0.0.7')).toBe('{fleet-a}:rate:address:10.0.0.7');
    expect(limiter.keyOf('credential', 'token:1')).toBe('{fleet-a}:rate:credential:token:1');
  });

  it('lets requests through when Redis cannot answer (fail open), and when a limit is off', async () => {
    const limiter = new RateLimiter(config());
    limiter.onModuleInit();
    try {
      for (let i = 0; i < 20; i++) {
        expect(await limiter.take('address', '10.0.0.7')).toEqual({ allowed: true });
      }
      expect(await limiter.take('credential', 'token:1')).toEqual({ allowed: true });
      expect(limiter.enabled).toBe(true);
      expect(new RateLimiter(config({ RATE_LIMIT_ADDRESS_PER_SECOND: '0' })).enabled).toBe(false);
    } finally {
      limiter.onApplicationShutdown();
    }
  });
});
