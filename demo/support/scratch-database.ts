import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/** A database created for one run (a test file, the demo) and dropped at its end. */
export interface ScratchDatabase {
  readonly name: string;
  readonly url: string;
  /** Drops the database, disconnecting whoever still holds it. */
  drop(): Promise<void>;
  /** Whether it still exists (the demo proves its clean-up with it). */
  exists(): Promise<boolean>;
}

/** The maintenance database of the server `databaseUrl` points at: scratch databases are made from it. */
export function maintenanceUrlOf(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.pathname = '/postgres';
  return url.toString();
}

export async function withAdmin<T>(adminUrl: string, fn: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: adminUrl, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * An empty database on the server of `adminUrl`, named `<prefix><milliseconds>_<8 hex>`: the time lets
 * a sweep find what a killed run left, the random part keeps parallel runs apart. The name is built
 * from digits and the caller's constant prefix only, so it needs no quoting.
 */
export async function createScratchDatabase(adminUrl: string, prefix: string): Promise<ScratchDatabase> {
  if (!/^[a-z_][a-z0-9_]*$/.test(prefix)) {
    throw new Error(`scratch database prefix "${prefix}" is not a plain lower-case identifier`);
  }
  const name = `${prefix}${Date.now()}_${randomBytes(4).toString('hex')}`;
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
    exists: () => withAdmin(adminUrl, async (c) => (await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [name])).rowCount === 1),
  };
}
