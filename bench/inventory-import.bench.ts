import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { pipeline } from 'node:stream/promises';
import { isMainThread, Worker, workerData } from 'node:worker_threads';
import { join } from 'node:path';
import { AuditLog } from '@rackseal/audit';
import { TrustStore } from '@rackseal/ek-trust';
import { makeCa, makeEkCertificate, type TestCa } from '../libs/ek-trust/src/testing/certificate-builder';
import { InventoryImporter, WorkerRowChecker, type ImportSummary, type RowChecker } from '@rackseal/inventory';
import { SystemClock } from '@rackseal/platform';
import type { DataSource } from 'typeorm';
import { createTestDatabase, openDataSource } from '../test/support/database';
import { TEST_ADMIN_DATABASE_URL, TEST_REDIS_URL } from '../test/support/services';
import { formatTable } from './measure';

/**
 * Inventory import throughput and memory (issue 5): CSV files of distinct, chain-verified EK
 * certificates (P-256 EK keys, RSA-2048 root and issuing CA, base64 DER cells), generated
 * streaming into /tmp and cached there between runs (`rackseal-inventory-bench/`), imported into a
 * fresh PostgreSQL database through InventoryImporter exactly as the control plane does (one
 * transaction, staging table, upsert, audit record). RSS of this process (worker threads included)
 * is sampled every 50 ms.
 *
 * INVENTORY_BENCH_ROWS (default 100000) and INVENTORY_BENCH_BIG_ROWS (default 1000000; 0 skips)
 * choose the sizes.
 */
const CACHE = '/tmp/rackseal-inventory-bench';
const FAR_PAST = new Date('2015-01-01T00:00:00Z');
const FAR_FUTURE = new Date('2045-01-01T00:00:00Z');

interface BenchCa {
  root: TestCa;
  issuing: TestCa;
}

function loadOrMakeCa(): BenchCa {
  mkdirSync(CACHE, { recursive: true });
  const file = join(CACHE, 'ca.json');
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as Record<'rootDer' | 'rootKey' | 'issuingDer' | 'issuingKey', string>;
    const revive = (der: string, key: string, cn: string): TestCa => {
      const privateKey = createPrivateKey(key);
      return { der: Buffer.from(der, 'base64'), subject: [[['O', 'Bench TPM Vendor']], [['CN', cn]]], privateKey, publicKey: publicOf(privateKey) };
    };
    return { root: revive(saved.rootDer, saved.rootKey, 'Bench EK Root'), issuing: revive(saved.issuingDer, saved.issuingKey, 'Bench EK Issuing CA') };
  }
  const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
  const root = makeCa({ subject: [[['O', 'Bench TPM Vendor']], [['CN', 'Bench EK Root']]], keys: rsa(), notBefore: FAR_PAST, notAfter: FAR_FUTURE });
  const issuing = makeCa({ subject: [[['O', 'Bench TPM Vendor']], [['CN', 'Bench EK Issuing CA']]], keys: rsa(), issuer: root, notBefore: FAR_PAST, notAfter: FAR_FUTURE, pathLength: 0 });
  const pem = (k: KeyObject) => k.export({ type: 'pkcs8', format: 'pem' }).toString();
  writeFileSync(file, JSON.stringify({ rootDer: root.der.toString('base64'), rootKey: pem(root.privateKey), issuingDer: issuing.der.toString('base64'), issuingKey: pem(issuing.privateKey) }));
  return { root, issuing };
}

function publicOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}

/** Writes rows [start, end) of distinct EK certificates to `path`, streaming (one row in memory). */
async function writeRows(ca: BenchCa, start: number, end: number, path: string, header: boolean): Promise<void> {
  const out = createWriteStream(path);
  if (header) {
    out.write('serial,asset_tag,hostname,group,ek_cert\n');
  }
  for (let i = start; i < end; i++) {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const der = makeEkCertificate({ issuer: ca.issuing, publicKey, notBefore: FAR_PAST, notAfter: FAR_FUTURE, serial: i + 1 });
    const line = `SN${String(i).padStart(8, '0')},AT${i},node${i}.bench,bench,${der.toString('base64')}\n`;
    if (!out.write(line)) {
      await once(out, 'drain');
    }
  }
  out.end();
  await once(out, 'finish');
}

interface GenerateJob {
  readonly inventoryBenchGenerate: true;
  readonly start: number;
  readonly end: number;
  readonly path: string;
  readonly header: boolean;
}

// Generator thread: one slice of the file (certificate signing is the slow part, so it is spread
// over the cores), then exit.
if (!isMainThread && (workerData as GenerateJob | undefined)?.inventoryBenchGenerate === true) {
  const job = workerData as GenerateJob;
  void writeRows(loadOrMakeCa(), job.start, job.end, job.path, job.header);
}

/** The cached `rows`-row file, generated on all cores when missing. */
async function csvFile(rows: number): Promise<{ path: string; generatedMs: number }> {
  const path = join(CACHE, `rows-${rows}.csv`);
  if (existsSync(path)) {
    return { path, generatedMs: 0 };
  }
  const started = performance.now();
  const threads = availableParallelism();
  const per = Math.ceil(rows / threads);
  const parts = Array.from({ length: threads }, (_, i) => ({ start: i * per, end: Math.min(rows, (i + 1) * per), path: `${path}.part${i}` }));
  await Promise.all(
    parts.map(async (part, i) => {
      const worker = new Worker(__filename, { workerData: { inventoryBenchGenerate: true, ...part, header: i === 0 } satisfies GenerateJob });
      const [code] = (await once(worker, 'exit')) as [number];
      if (code !== 0) {
        throw new Error(`generator thread ${i} exited with ${code}`);
      }
    }),
  );
  const out = createWriteStream(`${path}.partial`);
  for (const part of parts) {
    await pipeline(createReadStream(part.path), out, { end: false });
    rmSync(part.path);
  }
  out.end();
  await once(out, 'finish');
  renameSync(`${path}.partial`, path);
  return { path, generatedMs: performance.now() - started };
}

interface Run {
  label: string;
  rows: number;
  seconds: number;
  rowsPerSecond: number;
  peakRssMb: number;
  summary: ImportSummary;
}

async function timedImport(label: string, ds: DataSource, store: TrustStore, path: string, checker: RowChecker | undefined): Promise<Run> {
  const importer = new InventoryImporter(ds, new AuditLog(ds, new SystemClock()), new SystemClock(), {
    loadTrustStore: () => Promise.resolve(store),
    ekGraceDays: 0,
    rowChecker: checker,
  });
  global.gc?.();
  let peak = process.memoryUsage().rss;
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  const started = performance.now();
  const summary = await importer.import(createReadStream(path, { highWaterMark: 64 * 1024 }), { actor: 'bench', fileName: label });
  const seconds = (performance.now() - started) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.memoryUsage().rss);
  if (summary.counts.invalid > 0) {
    throw new Error(`${label}: ${summary.counts.invalid} rows refused, first: ${JSON.stringify(summary.problems[0])}`);
  }
  return { label, rows: summary.counts.rows, seconds, rowsPerSecond: summary.counts.rows / seconds, peakRssMb: peak / 2 ** 20, summary };
}

export async function inventoryImportBench(): Promise<string> {
  process.env[TEST_ADMIN_DATABASE_URL] ??= process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  process.env[TEST_REDIS_URL] ??= 'redis://127.0.0.1:6379';
  const rows = Number(process.env.INVENTORY_BENCH_ROWS ?? 100_000);
  const bigRows = Number(process.env.INVENTORY_BENCH_BIG_ROWS ?? 1_000_000);
  const ca = loadOrMakeCa();
  const store = new TrustStore();
  store.add(ca.root.der);
  store.add(ca.issuing.der);
  const small = await csvFile(rows);
  const db = await createTestDatabase();
  const ds = await openDataSource(db.url);
  const threads = availableParallelism();
  const pool = new WorkerRowChecker(threads);
  const runs: Run[] = [];
  const notes: string[] = [];
  try {
    if (process.env.INVENTORY_BENCH_SKIP_IN_PROCESS !== '1') {
      runs.push(await timedImport(`${rows} rows, checks in-process`, ds, store, small.path, undefined));
      await ds.query('TRUNCATE machine_transitions, machines, inventory_imports');
    }
    runs.push(await timedImport(`${rows} rows, checks on ${threads} worker threads`, ds, store, small.path, pool));
    runs.push(await timedImport(`${rows} rows again (re-import, no-op), ${threads} workers`, ds, store, small.path, pool));
    notes.push(`${rows}-row file: ${(statSync(small.path).size / 1e6).toFixed(1)} MB${small.generatedMs > 0 ? `, generated in ${(small.generatedMs / 1000).toFixed(0)} s` : ' (cached)'}.`);
    if (bigRows > 0) {
      const big = await csvFile(bigRows);
      notes.push(`${bigRows}-row file: ${(statSync(big.path).size / 1e6).toFixed(1)} MB${big.generatedMs > 0 ? `, generated in ${(big.generatedMs / 1000).toFixed(0)} s` : ' (cached)'}.`);
      await ds.query('TRUNCATE machine_transitions, machines, inventory_imports');
      runs.push(await timedImport(`${bigRows} rows, ${threads} workers`, ds, store, big.path, pool));
    }
  } finally {
    await pool.close();
    await ds.destroy();
    await db.drop();
  }
  const table = formatTable([
    ['import (atomic, one transaction)', 'rows', 'time', 'rows/s', 'created / unchanged', 'peak RSS'],
    ...runs.map((r) => [
      r.label,
      String(r.rows),
      `${r.seconds.toFixed(1)} s`,
      r.rowsPerSecond.toFixed(0),
      `${r.summary.counts.created} / ${r.summary.counts.unchanged}`,
      `${r.peakRssMb.toFixed(0)} MB`,
    ]),
  ]);
  return `${table}\n\n${notes.join(' ')}`;
}
