import { spawnSync } from 'node:child_process';
import IORedis from 'ioredis';
import { Client } from 'pg';

/**
 * Where the suites find PostgreSQL and Redis. Resolved once by the global setup and handed to every
 * test worker through these variables.
 */
export const TEST_ADMIN_DATABASE_URL = 'RACKSEAL_TEST_ADMIN_DATABASE_URL';
export const TEST_REDIS_URL = 'RACKSEAL_TEST_REDIS_URL';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** The maintenance database of the server DATABASE_URL points at: test databases are created from it. */
export function adminUrlOf(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  return url.toString();
}

export async function postgresAnswers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function redisAnswers(url: string): Promise<boolean> {
  const client = new IORedis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 3000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export function dockerAvailable(): boolean {
  return spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 10000 }).status === 0;
}

export interface ResolvedServices {
  readonly adminDatabaseUrl: string;
  readonly redisUrl: string;
  /** Stops containers the harness started; a no-op for services it found running. */
  stop(): Promise<void>;
}

/**
 * Real services or a loud failure: DATABASE_URL/REDIS_URL (or the local defaults) when they answer,
 * otherwise testcontainers when a Docker engine is there, otherwise an error that says what to do.
 * Never a silent skip.
 */
export async function resolveServices(
  env: NodeJS.ProcessEnv = process.env,
  hasDocker: () => boolean = dockerAvailable,
): Promise<ResolvedServices> {
  let adminDatabaseUrl = adminUrlOf(env.DATABASE_URL || DEFAULT_DATABASE_URL);
  let redisUrl = env.REDIS_URL || DEFAULT_REDIS_URL;
  const stops: (() => Promise<unknown>)[] = [];

  const [pgUp, redisUp] = await Promise.all([postgresAnswers(adminDatabaseUrl), redisAnswers(redisUrl)]);
  if ((!pgUp || !redisUp) && !hasDocker()) {
    const down = [!pgUp && `PostgreSQL (${new URL(adminDatabaseUrl).host})`, !redisUp && `Redis (${new URL(redisUrl).host})`]
      .filter(Boolean)
      .join(' and ');
    throw new Error(
      `rackseal tests need real services: ${down} did not answer and no Docker engine is available for ` +
        'testcontainers. Start them (npm test does this for local installs) or set DATABASE_URL / REDIS_URL.',
    );
  }
  if (!pgUp) {
    const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
    const container = await new PostgreSqlContainer('postgres:15-alpine').start();
    adminDatabaseUrl = adminUrlOf(container.getConnectionUri());
    stops.push(() => container.stop());
  }
  if (!redisUp) {
    const { RedisContainer } = await import('@testcontainers/redis');
    const container = await new RedisContainer('redis:7-alpine').start();
    redisUrl = container.getConnectionUrl();
    stops.push(() => container.stop());
  }
  return {
    adminDatabaseUrl,
    redisUrl,
    stop: async () => {
      await Promise.all(stops.map((stop) => stop()));
    },
  };
}

/** In a test worker: the services the global setup resolved. */
export function testServices(): { adminDatabaseUrl: string; redisUrl: string } {
  const adminDatabaseUrl = process.env[TEST_ADMIN_DATABASE_URL];
  const redisUrl = process.env[TEST_REDIS_URL];
  if (!adminDatabaseUrl || !redisUrl) {
    throw new Error('test services are not resolved: run the suites through jest (globalSetup resolves them)');
  }
  return { adminDatabaseUrl, redisUrl };
}
