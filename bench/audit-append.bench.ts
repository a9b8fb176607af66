import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AuditLog, AuditSequencer, CheckpointSigner, type Queryable, type TreeHead } from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config';
import { SystemClock } from '@rackseal/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { createTestDatabase, openDataSource } from '../test/support/database';
import { TEST_ADMIN_DATABASE_URL, TEST_REDIS_URL } from '../test/support/services';
import { formatTable, measure, us } from './measure';

/**
 * The audit append's cost to a decision transaction (issue 11), on a fresh, fully migrated database:
 *
 * - pgbench (64 clients, 2 threads) runs three transaction scripts, interleaved round by round:
 *   (A) one business insert; (B) the same plus the audit append — AuditLog.append's INSERT of a
 *   pending record, the same statement; (C) the same business insert plus the former chain-lock
 *   append (lock the head row, insert the chained record, update the head) on a copy of the former
 *   tables. pgbench drives because one Node thread would bound the figures before PostgreSQL does.
 * - Node at 64 concurrent transactions (pool 64): the business insert alone, plus AuditLog.append,
 *   and plus the raw SQL of the append, to show the library adds nothing beyond its statement.
 * - Merge delay: pgbench drives (B) rate-limited to AUDIT_BENCH_RATE (default 5,000) transactions/s
 *   while the real AuditSequencer runs in this process; each record's delay is measured from its
 *   recorded_at to the checkpoint that first covers it.
 *
 * The sequencer runs throughout (as the worker does in production), so (B) pays for sequencing too;
 * (B) runs once more per round with the sequencer stopped, to separate the append from the sequencing.
 * AUDIT_BENCH_SECONDS (default 10), AUDIT_BENCH_ROUNDS (default 3) and AUDIT_BENCH_NODE_SECONDS (default 5)
 * choose the run lengths; AUDIT_BENCH_PARTS (default `pgbench,node,merge`) the parts that run.
 */
const run = promisify(execFile);
const CLIENTS = 64;

interface PgbenchResult {
  readonly tps: number;
  readonly transactions: number;
  readonly meanMs: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly failed: number;
}

const BUSINESS_INSERT = `INSERT INTO bench_decisions (machine, decided_at) VALUES ('machine-' || :m::text, clock_timestamp());`;

// (B): AuditLog.append's statement (libs/audit audit-log.ts), its six parameters filled by pgbench.
const AUDIT_APPEND = `INSERT INTO audit_log (recorded_at, actor, action, subject, outcome, details)
       VALUES (clock_timestamp()::timestamptz, 'bench', 'machine.decide', 'machine:' || :m::text, 'success', '{"decision":"approve","reason":"bench"}'::jsonb) RETURNING id;`;

// (C): the former append (migrations/1763700000000-create-audit-log.ts, AuditLog before issue 11):
// lock the head, insert the record chained to it, move the head; the hash is computed in SQL here
// (the former code hashed in Node between the lock and the insert, which only lengthened the lock).
const OLD_APPEND = `SELECT seq AS head_seq, hash AS head_hash FROM bench_old_chain_head WHERE id = 1 FOR UPDATE \\gset
INSERT INTO bench_old_audit_log (seq, recorded_at, actor, action, subject, outcome, details, prev_hash, hash)
       VALUES (:head_seq::bigint + 1, clock_timestamp(), 'bench', 'machine.decide', 'machine:' || :m::text, 'success',
               '{"decision":"approve","reason":"bench"}'::jsonb, :head_hash::bytea, sha256(:head_hash::bytea || int8send(:head_seq::bigint + 1)));
UPDATE bench_old_chain_head SET seq = :head_seq::bigint + 1, hash = sha256(:head_hash::bytea || int8send(:head_seq::bigint + 1)) WHERE id = 1;`;

const SCRIPTS = {
  A: `\\set m random(1, 100000)\nBEGIN;\n${BUSINESS_INSERT}\nCOMMIT;\n`,
  B: `\\set m random(1, 100000)\nBEGIN;\n${BUSINESS_INSERT}\n${AUDIT_APPEND}\nCOMMIT;\n`,
  C: `\\set m random(1, 100000)\nBEGIN;\n${BUSINESS_INSERT}\n${OLD_APPEND}\nCOMMIT;\n`,
} as const;
type Script = keyof typeof SCRIPTS;

const LABELS: Record<Script | 'B0', string> = {
  A: '(A) business insert only',
  B: '(B) business insert + audit append (pending INSERT)',
  B0: '(B) with the sequencer stopped',
  C: '(C) business insert + former chain-lock append',
};

/** The business table and a copy of the former audit tables (same columns, keys, indexes, triggers). */
async function createBenchTables(ds: DataSource): Promise<void> {
  await ds.query(`CREATE TABLE bench_decisions (id bigserial PRIMARY KEY, machine text NOT NULL, decided_at timestamptz NOT NULL)`);
  await ds.query(`
    CREATE TABLE bench_old_audit_log (
      seq          bigint      PRIMARY KEY CHECK (seq > 0),
      recorded_at  timestamptz NOT NULL,
      actor        text        NOT NULL CHECK (length(actor) BETWEEN 1 AND 200),
      action       text        NOT NULL CHECK (length(action) BETWEEN 1 AND 200),
      subject      text        NOT NULL CHECK (length(subject) <= 500),
      outcome      text        NOT NULL CHECK (outcome IN ('success', 'refused', 'failure')),
      details      jsonb       NOT NULL,
      prev_hash    bytea       NOT NULL UNIQUE CHECK (octet_length(prev_hash) = 32),
      hash         bytea       NOT NULL UNIQUE CHECK (octet_length(hash) = 32)
    )`);
  await ds.query(`CREATE INDEX bench_old_audit_log_subject_idx ON bench_old_audit_log (subject, seq)`);
  await ds.query(`CREATE INDEX bench_old_audit_log_action_idx ON bench_old_audit_log (action, seq)`);
  await ds.query(`CREATE TABLE bench_old_chain_head (id smallint PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL CHECK (seq >= 0), hash bytea NOT NULL CHECK (octet_length(hash) = 32))`);
  await ds.query(`INSERT INTO bench_old_chain_head (id, seq, hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'))`);
  await ds.query(`CREATE TRIGGER bench_old_audit_log_no_update_delete BEFORE UPDATE OR DELETE ON bench_old_audit_log FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()`);
}

function percentile(sorted: ArrayLike<number>, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/** One pgbench run of `script`; latencies from its per-transaction log (column 3, µs). */
async function pgbench(dir: string, dbUrl: string, script: Script, seconds: number, extra: string[] = []): Promise<PgbenchResult> {
  const file = join(dir, `${script}.sql`);
  writeFileSync(file, SCRIPTS[script]);
  const runDir = mkdtempSync(join(dir, `log-${script}-`));
  const url = new URL(dbUrl);
  const { stdout } = await run(
    'pgbench',
    ['-n', '-M', 'extended', '-c', String(CLIENTS), '-j', '2', '-T', String(seconds), '-f', file, '-l', `--log-prefix=${join(runDir, 'tx')}`, ...extra,
      '-h', url.hostname, '-p', url.port || '5432', '-U', decodeURIComponent(url.username), url.pathname.slice(1)],
    { maxBuffer: 16 * 2 ** 20 },
  );
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1] ?? NaN);
  const failed = Number(/number of failed transactions: (\d+)/.exec(stdout)?.[1] ?? 0);
  const latencies: number[] = [];
  for (const name of readdirSync(runDir)) {
    for (const line of readFileSync(join(runDir, name), 'utf8').split('\n')) {
      const cols = line.split(' ');
      if (cols.length >= 6) {
        latencies.push(Number(cols[2]) / 1000);
      }
    }
  }
  rmSync(runDir, { recursive: true });
  latencies.sort((a, b) => a - b);
  const meanMs = latencies.reduce((s, v) => s + v, 0) / latencies.length;
  return { tps, transactions: latencies.length, meanMs, p50Ms: percentile(latencies, 0.5), p99Ms: percentile(latencies, 0.99), failed };
}

/** A signer that also notes when each checkpoint became visible (committed), by this process's clock. */
class TimedSigner extends CheckpointSigner {
  readonly visibleAt = new Map<number, number>();

  override async signIfGrown(db: Queryable, head: TreeHead): Promise<boolean> {
    const signed = await super.signIfGrown(db, head);
    if (signed) {
      this.visibleAt.set(head.size, Date.now());
    }
    return signed;
  }
}

interface NodeResult {
  readonly tps: number;
  readonly meanMs: number;
  readonly p99Ms: number;
}

/** `CLIENTS` concurrent loops of `transaction` on a pool of `CLIENTS` for `seconds`. */
async function nodeRun(seconds: number, transaction: () => Promise<unknown>): Promise<NodeResult> {
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      while (performance.now() < until) {
        const t0 = performance.now();
        await transaction();
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { tps: latencies.length / elapsed, meanMs: latencies.reduce((s, v) => s + v, 0) / latencies.length, p99Ms: percentile(latencies, 0.99) };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const fmt = (v: number, digits = 1): string => v.toFixed(digits);
const spread = (values: readonly number[], digits = 0): string => `${fmt(Math.min(...values), digits)}–${fmt(Math.max(...values), digits)}`;

interface MergeDelays {
  readonly records: number;
  readonly checkpoints: number;
  /** signed_at (the head's time, taken when its batch started) − recorded_at, ms. */
  readonly signed: { p50: number; p99: number; max: number };
  /** when the checkpoint was committed (this process's clock) − recorded_at, ms. */
  readonly visible: { p50: number; p99: number; max: number };
}

/** Merge delays of the records with id in (afterId, toId]. */
async function mergeDelays(ds: DataSource, signer: TimedSigner, afterId: number, toId: number): Promise<MergeDelays> {
  const rows = (await ds.query(
    `SELECT l.seq, extract(epoch FROM l.recorded_at) * 1000 AS recorded_ms, c.tree_size, extract(epoch FROM c.signed_at) * 1000 AS signed_ms
       FROM audit_log l
       LEFT JOIN LATERAL (SELECT tree_size, signed_at FROM audit_checkpoints WHERE tree_size >= l.seq ORDER BY tree_size LIMIT 1) c ON true
      WHERE l.id > $1 AND l.id <= $2`,
    [afterId, toId],
  )) as { seq: string | null; recorded_ms: string; tree_size: string | null; signed_ms: string | null }[];
  const signed: number[] = [];
  const visible: number[] = [];
  const sizes = new Set<string>();
  for (const r of rows) {
    if (r.tree_size === null || r.signed_ms === null) {
      throw new Error(`record seq ${r.seq ?? 'pending'} is not covered by a checkpoint after the drain`);
    }
    sizes.add(r.tree_size);
    signed.push(Number(r.signed_ms) - Number(r.recorded_ms));
    const seen = signer.visibleAt.get(Number(r.tree_size));
    if (seen !== undefined) {
      visible.push(seen - Number(r.recorded_ms));
    }
  }
  const stats = (v: number[]) => {
    v.sort((a, b) => a - b);
    return { p50: percentile(v, 0.5), p99: percentile(v, 0.99), max: v[v.length - 1] ?? NaN };
  };
  return { records: rows.length, checkpoints: sizes.size, signed: stats(signed), visible: stats(visible) };
}

const maxAuditId = async (ds: DataSource): Promise<number> =>
  Number(((await ds.query('SELECT COALESCE(max(id), 0) AS id FROM audit_log')) as { id: string }[])[0]!.id);

/** Waits until nothing is pending and the latest checkpoint covers the tree. */
async function waitDrained(ds: DataSource): Promise<void> {
  for (;;) {
    const [row] = (await ds.query(
      `SELECT (SELECT count(*) FROM audit_log WHERE seq IS NULL)::int AS pending,
              (SELECT size FROM audit_tree_head) = (SELECT COALESCE(max(tree_size), 0) FROM audit_checkpoints) AS signed`,
    )) as { pending: number; signed: boolean }[];
    if (row!.pending === 0 && row!.signed) {
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function auditAppendBench(): Promise<string> {
  process.env[TEST_ADMIN_DATABASE_URL] ??= process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  process.env[TEST_REDIS_URL] ??= 'redis://127.0.0.1:6379';
  const seconds = Number(process.env.AUDIT_BENCH_SECONDS ?? 10);
  const rounds = Number(process.env.AUDIT_BENCH_ROUNDS ?? 3);
  const rate = Number(process.env.AUDIT_BENCH_RATE ?? 5000);
  const nodeSeconds = Number(process.env.AUDIT_BENCH_NODE_SECONDS ?? 5);
  const parts = new Set((process.env.AUDIT_BENCH_PARTS ?? 'pgbench,node,merge').split(','));
  const db = await createTestDatabase();
  const dir = mkdtempSync(join(tmpdir(), 'rackseal-audit-bench-'));
  const sequencerDs = await openDataSource(db.url, 3);
  const signer = new TimedSigner({ origin: 'bench/audit', masterKey: new SecretBytes(randomBytes(32)), signingKeySeed: null });
  const errors: string[] = [];
  const newSequencer = () =>
    new AuditSequencer(sequencerDs, signer, new SystemClock(), { maxMergeDelayMs: 1000 }, {
      log: () => undefined,
      error: (message) => errors.push(message),
    });
  let sequencer = newSequencer();
  // (B) once more with the sequencer stopped: what the append costs without the sequencing beside it.
  const withoutSequencer = async <T>(work: () => Promise<T>): Promise<T> => {
    await sequencer.stop();
    try {
      return await work();
    } finally {
      sequencer = newSequencer();
      sequencer.start();
    }
  };
  const out: string[] = [];
  try {
    await createBenchTables(sequencerDs);
    sequencer.start();

    if (parts.has('pgbench')) {
      out.push(await pgbenchPart(sequencerDs, signer, dir, db.url, seconds, rounds, withoutSequencer));
    }
    if (parts.has('node')) {
      out.push(await nodePart(db.url, nodeSeconds, rounds));
    }
    if (parts.has('merge')) {
      out.push(await mergePart(sequencerDs, signer, dir, db.url, seconds, rounds, rate));
    }
    if (errors.length > 0) {
      out.push(`Sequencer errors: ${errors.join('; ')}`);
    }
  } finally {
    await sequencer.stop();
    await sequencerDs.destroy();
    rmSync(dir, { recursive: true, force: true });
    await db.drop();
  }
  return out.join('\n\n');
}

/** pgbench A/B/C, interleaved round by round. */
async function pgbenchPart(
  sequencerDs: DataSource,
  signer: TimedSigner,
  dir: string,
  dbUrl: string,
  seconds: number,
  rounds: number,
  withoutSequencer: <T>(work: () => Promise<T>) => Promise<T>,
): Promise<string> {
  const out: string[] = [];
  const results: Record<Script | 'B0', PgbenchResult[]> = { A: [], B: [], B0: [], C: [] };
  const roundDelays: MergeDelays[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const variant of ['A', 'B', 'B0', 'C'] as const) {
      await waitDrained(sequencerDs);
      await sequencerDs.query('CHECKPOINT');
      const before = await maxAuditId(sequencerDs);
      const script = variant === 'B0' ? 'B' : variant;
      results[variant].push(await (variant === 'B0' ? withoutSequencer(() => pgbench(dir, dbUrl, script, seconds)) : pgbench(dir, dbUrl, script, seconds)));
      if (variant === 'B0') {
        continue;
      }
      if (script === 'B') {
        await waitDrained(sequencerDs);
        roundDelays.push(await mergeDelays(sequencerDs, signer, before, await maxAuditId(sequencerDs)));
      }
    }
  }
  const med = (s: Script | 'B0', k: keyof PgbenchResult) => median(results[s].map((r) => r[k]));
  out.push(
    formatTable([
      ['pgbench, 64 clients, -M extended', 'tx/s (median)', 'tx/s per round', 'mean latency', 'p50', 'p99', 'failed', 'vs (A)'],
      ...(['A', 'B', 'B0', 'C'] as const).map((s) => [
        LABELS[s],
        fmt(med(s, 'tps'), 0),
        results[s].map((r) => fmt(r.tps, 0)).join(' / '),
        `${fmt(med(s, 'meanMs'), 2)} ms`,
        `${fmt(med(s, 'p50Ms'), 2)} ms`,
        `${fmt(med(s, 'p99Ms'), 2)} ms`,
        String(results[s].reduce((n, r) => n + r.failed, 0)),
        `${fmt(med(s, 'tps') / med('A', 'tps'), 2)}×`,
      ]),
    ]),
  );
  const ratioB = results.B.map((r, i) => r.tps / results.A[i]!.tps);
  const ratioB0 = results.B0.map((r, i) => r.tps / results.A[i]!.tps);
  const ratioC = results.C.map((r, i) => r.tps / results.A[i]!.tps);
  out.push(
    `B/A per round: ${ratioB.map((r) => fmt(r, 2)).join(', ')} (median ${fmt(median(ratioB), 2)}); B (sequencer stopped)/A: ${ratioB0.map((r) => fmt(r, 2)).join(', ')} (median ${fmt(median(ratioB0), 2)}); C/A per round: ${ratioC.map((r) => fmt(r, 2)).join(', ')} (median ${fmt(median(ratioC), 2)}).`,
  );
  out.push(
    `Merge delay of the unthrottled (B) rounds (sequencer running): ${roundDelays
      .map((d) => `p99 ${fmt(d.visible.p99, 0)} ms visible / ${fmt(d.signed.p99, 0)} ms signed_at, max ${fmt(d.visible.max, 0)} ms, ${d.records} records, ${d.checkpoints} checkpoints`)
      .join('; ')}.`,
  );

  return out.join('\n\n');
}

/** Node: the real AuditLog.append in a TypeORM transaction, against its raw SQL and no append. */
async function nodePart(dbUrl: string, nodeSeconds: number, rounds: number): Promise<string> {
  const out: string[] = [];
  const nodeDs = await openDataSource(dbUrl, CLIENTS);
  try {
    const audit = new AuditLog(nodeDs, new SystemClock());
    const business = (m: { query: (sql: string, params: unknown[]) => Promise<unknown> }) =>
      m.query(`INSERT INTO bench_decisions (machine, decided_at) VALUES ($1, $2)`, [`machine-${Math.floor(Math.random() * 100000)}`, new Date()]);
    const variants: [string, () => Promise<unknown>][] = [
      ['business insert only', () => nodeDs.transaction((m) => business(m))],
      [
        '+ AuditLog.append',
        () =>
          nodeDs.transaction(async (m) => {
            await business(m);
            await audit.append({ actor: 'bench', action: 'machine.decide', subject: 'machine:1', outcome: 'success', details: { decision: 'approve', reason: 'bench' } }, m);
          }),
      ],
      [
        '+ the same INSERT as raw SQL',
        () =>
          nodeDs.transaction(async (m) => {
            await business(m);
            await m.query(
              `INSERT INTO audit_log (recorded_at, actor, action, subject, outcome, details)
     VALUES ($1::timestamptz, $2, $3, $4, $5, $6::jsonb) RETURNING id`,
              [new Date(), 'bench', 'machine.decide', 'machine:1', 'success', '{"decision":"approve","reason":"bench"}'],
            );
          }),
      ],
    ];
    await nodeRun(2, variants[1]![1]); // warm-up: JIT and 64 connections
    const nodeResults = variants.map(() => [] as NodeResult[]);
    for (let round = 0; round < rounds; round++) {
      for (let v = 0; v < variants.length; v++) {
        nodeResults[v]!.push(await nodeRun(nodeSeconds, variants[v]![1]));
      }
    }
    const base = median(nodeResults[0]!.map((r) => r.tps));
    out.push(
      formatTable([
        ['Node (TypeORM transaction, pool 64, 64 concurrent)', 'tx/s (median)', 'tx/s per round', 'mean latency', 'p99', 'vs business only'],
        ...variants.map(([label], v) => [
          label,
          fmt(median(nodeResults[v]!.map((r) => r.tps)), 0),
          nodeResults[v]!.map((r) => fmt(r.tps, 0)).join(' / '),
          `${fmt(median(nodeResults[v]!.map((r) => r.meanMs)), 2)} ms`,
          `${fmt(median(nodeResults[v]!.map((r) => r.p99Ms)), 2)} ms`,
          `${fmt(median(nodeResults[v]!.map((r) => r.tps)) / base, 2)}×`,
        ]),
      ]),
    );
    const libVsRaw = nodeResults[1]!.map((r, i) => r.tps / nodeResults[2]![i]!.tps);
    out.push(`AuditLog.append / raw SQL per round: ${libVsRaw.map((r) => fmt(r, 2)).join(', ')}.`);
    // The library's own CPU per append (validation, canonical JSON, timestamp text), the query answered at once.
    const stub = { query: () => Promise.resolve([{ id: '1' }]) } as unknown as EntityManager;
    const cpu = await measure(
      'AuditLog.append, query stubbed',
      () => audit.append({ actor: 'bench', action: 'machine.decide', subject: 'machine:1', outcome: 'success', details: { decision: 'approve', reason: 'bench' } }, stub),
      { iterations: 100_000, warmup: 10_000 },
    );
    out.push(`AuditLog.append's own CPU (query stubbed, 100,000 calls): mean ${us(cpu.meanUs)}, p99 ${us(cpu.p99Us)}.`);
  } finally {
    await nodeDs.destroy();
  }
  return out.join('\n\n');
}

/** Merge delay while pgbench drives (B) at the target append rate. */
async function mergePart(sequencerDs: DataSource, signer: TimedSigner, dir: string, dbUrl: string, seconds: number, rounds: number, rate: number): Promise<string> {
  const out: string[] = [];
  await waitDrained(sequencerDs);
  const mergeRuns: { result: PgbenchResult; delays: MergeDelays }[] = [];
  for (let round = 0; round < rounds; round++) {
    const before = await maxAuditId(sequencerDs);
    const result = await pgbench(dir, dbUrl, 'B', seconds, ['-R', String(rate)]);
    await waitDrained(sequencerDs);
    mergeRuns.push({ result, delays: await mergeDelays(sequencerDs, signer, before, await maxAuditId(sequencerDs)) });
  }
  out.push(
    formatTable([
      [`(B) at -R ${rate}, sequencer in this process`, 'appends/s', 'records', 'checkpoints', 'delay p50 (visible)', 'p99 (visible)', 'max (visible)', 'p99 (signed_at)', 'tx p99'],
      ...mergeRuns.map(({ result, delays }, i) => [
        `round ${i + 1}`,
        fmt(result.tps, 0),
        String(delays.records),
        String(delays.checkpoints),
        `${fmt(delays.visible.p50, 0)} ms`,
        `${fmt(delays.visible.p99, 0)} ms`,
        `${fmt(delays.visible.max, 0)} ms`,
        `${fmt(delays.signed.p99, 0)} ms`,
        `${fmt(result.p99Ms, 1)} ms`,
      ]),
    ]),
  );
  out.push(`p99 merge delay (visible) over rounds: ${spread(mergeRuns.map((r) => r.delays.visible.p99))} ms; append rate ${spread(mergeRuns.map((r) => r.result.tps))}/s.`);
  return out.join('\n\n');
}
