import type { INestApplication } from '@nestjs/common';
import { ApiTokens } from '@rackseal/api-tokens';
import { request as httpRequest, Agent } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import { RateLimiter } from '../apps/control-plane/src/hardening/rate-limiter';
import { createTestDatabase } from '../test/support/database';
import { createTestQueuePrefix } from '../test/support/redis';
import { TEST_ADMIN_DATABASE_URL, TEST_REDIS_URL } from '../test/support/services';
import { testConfig } from '../test/support/test-config';
import { formatTable, us } from './measure';

/**
 * What the rate limits cost a request (issue 15 item 3): the token bucket alone (RateLimiter.take,
 * one EVALSHA to the local Redis) at 1 and 32 concurrent callers, and an operator call (GET
 * /v1/machines?limit=1 with a token: the address bucket, the bearer guard's database lookup, the
 * credential bucket, one query) against an in-process control plane with the limits off (rates 0)
 * and on (rates high enough never to refuse), in alternating rounds. RATE_BENCH_SECONDS (default 5)
 * per round, RATE_BENCH_ROUNDS (default 3).
 */
const SECONDS = Number(process.env.RATE_BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.RATE_BENCH_ROUNDS ?? 3);
const CONCURRENCY = 32;

interface Run {
  readonly ops: number;
  readonly p50Us: number;
  readonly p99Us: number;
}

/** `concurrency` loops calling `operation` for SECONDS; per-call latency percentiles and calls/s. */
async function drive(concurrency: number, operation: () => Promise<unknown>): Promise<Run> {
  const samples: number[] = [];
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now();
        await operation();
        samples.push((performance.now() - t0) * 1000);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  samples.sort((a, b) => a - b);
  return { ops: samples.length / elapsed, p50Us: samples[Math.floor(samples.length * 0.5)]!, p99Us: samples[Math.floor(samples.length * 0.99)]! };
}

function median(runs: readonly Run[]): Run {
  const pick = (key: keyof Run) => [...runs.map((r) => r[key])].sort((a, b) => a - b)[Math.floor(runs.length / 2)]!;
  return { ops: pick('ops'), p50Us: pick('p50Us'), p99Us: pick('p99Us') };
}

async function startApp(db: { url: string }, prefix: string, rate: string): Promise<{ app: INestApplication; port: number }> {
  const app = await createControlPlane(
    testConfig(db, prefix, { LOG_LEVEL: 'silent', RATE_LIMIT_ADDRESS_PER_SECOND: rate, RATE_LIMIT_CREDENTIAL_PER_SECOND: rate, DATABASE_POOL_SIZE: '20' }),
  );
  await app.listen(0, '127.0.0.1');
  return { app, port: (app.getHttpServer().address() as AddressInfo).port };
}

export async function rateLimitBench(): Promise<string> {
  // The local services, as the other benchmarks take them (no jest globalSetup here).
  process.env[TEST_ADMIN_DATABASE_URL] ??= process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  process.env[TEST_REDIS_URL] ??= 'redis://127.0.0.1:6379';
  const db = await createTestDatabase();
  const prefix = createTestQueuePrefix();
  const off = await startApp(db, prefix.prefix, '0');
  const on = await startApp(db, prefix.prefix, '1000000');
  const token = (await on.app.get(ApiTokens).issue('bench', ['admin'], 'bench')).token;
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  const call = (port: number) =>
    new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/machines?limit=1', agent, headers: { authorization: `Bearer ${token}` } }, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`HTTP ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end();
    });
  const limiter = on.app.get(RateLimiter);
  let n = 0;
  const take = () => limiter.take('credential', `bench-${n++ % 1000}`);
  try {
    const takes: Record<string, Run[]> = { '1': [], [String(CONCURRENCY)]: [] };
    const http: Record<'off' | 'on', Run[]> = { off: [], on: [] };
    for (let round = 0; round < ROUNDS; round += 1) {
      takes['1']!.push(await drive(1, take));
      takes[String(CONCURRENCY)]!.push(await drive(CONCURRENCY, take));
      http.off.push(await drive(CONCURRENCY, () => call(off.port)));
      http.on.push(await drive(CONCURRENCY, () => call(on.port)));
    }
    const rows: string[][] = [['measured (median of rounds)', 'calls/s', 'p50', 'p99']];
    for (const [concurrency, runs] of Object.entries(takes)) {
      const m = median(runs);
      rows.push([`RateLimiter.take, ${concurrency} concurrent`, m.ops.toFixed(0), us(m.p50Us), us(m.p99Us)]);
    }
    for (const [label, runs] of [['limits off (rates 0)', http.off], ['limits on (two buckets per call)', http.on]] as const) {
      const m = median(runs);
      rows.push([`GET /v1/machines?limit=1, ${CONCURRENCY} concurrent, ${label}`, m.ops.toFixed(0), us(m.p50Us), us(m.p99Us)]);
    }
    return `${SECONDS} s per round, ${ROUNDS} rounds, alternating; local Redis and PostgreSQL.\n\n${formatTable(rows)}`;
  } finally {
    agent.destroy();
    await off.app.close();
    await on.app.close();
    await prefix.clear();
    await db.drop();
  }
}
