import { Clock } from '@rackseal/platform';
import type { DataSource, QueryRunner } from 'typeorm';
import { integrateBatch } from './audit-batch';
import type { TreeHead } from './audit-tree-store';
import type { CheckpointSigner } from './audit-checkpoints';
import { AuditTreeStore } from './audit-tree-store';

/**
 * Session-level advisory lock held by the one sequencer of a database (two 32-bit halves: 'rsq' and
 * 'audt' in ASCII), distinct from the migration lock (libs/persistence migration-runner.ts).
 */
export const SEQUENCER_LOCK_KEY = [0x727371, 0x61756474] as const;

/** Most records one batch integrates: bounds one transaction's rows while keeping up with ≥ 5,000 appends/s. */
export const SEQUENCER_BATCH_LIMIT = 5000;

/** Longest wait between two attempts of a sequencer that keeps failing. */
const MAX_RETRY_MS = 30_000;

export interface SequencerOptions {
  /** Most time a committed record may wait before a signed checkpoint covers it. */
  readonly maxMergeDelayMs: number;
  /** How often a process without the lock tries to take over. */
  readonly takeoverPollMs?: number;
}

export interface SequencerLogger {
  log(message: string): void;
  error(message: string): void;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/**
 * The single writer of the audit Merkle tree. Every process that runs one competes for a PostgreSQL
 * session advisory lock; the holder integrates committed records in batches (audit-batch.ts) and
 * signs a checkpoint after them, the others poll for the lock, so when the holder dies (its session
 * ends and the lock with it) another takes over within `takeoverPollMs`.
 *
 * Cadence: a batch starts every maxMergeDelay/5 while the log is idle and back to back while records
 * wait; a checkpoint is signed after every batch that leaves nothing pending, and at least every
 * maxMergeDelay/4 while records keep arriving — so a record is covered by a signed checkpoint within
 * the maximum merge delay while bounding checkpoints to a few per second.
 */
export class AuditSequencer {
  private readonly abort = new AbortController();
  private running: Promise<void> | undefined;
  private holding = false;
  readonly #stats = { integratedRecords: 0, signedCheckpoints: 0, failures: 0 };

  constructor(
    private readonly dataSource: DataSource,
    private readonly checkpoints: CheckpointSigner,
    private readonly clock: Clock,
    private readonly options: SequencerOptions,
    private readonly logger: SequencerLogger,
  ) {}

  /**
   * What this process's sequencer did since it started (the worker's /metrics): records integrated,
   * checkpoints signed, failed attempts (each retried after a backoff).
   */
  get stats(): { readonly integratedRecords: number; readonly signedCheckpoints: number; readonly failures: number } {
    return { ...this.#stats };
  }

  /** Whether this process currently holds the sequencer lock. */
  get isSequencer(): boolean {
    return this.holding;
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stops after the batch in flight; the lock goes with the session. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.running;
  }

  /**
   * Integrates everything committed so far and signs a checkpoint over it, on a session of its own,
   * if the sequencer lock is free (tests, benchmarks); false when another sequencer holds it.
   */
  async drainOnce(): Promise<boolean> {
    const session = this.dataSource.createQueryRunner();
    try {
      await session.connect();
      if (!(await tryLock(session))) {
        return false;
      }
      try {
        await this.checkpoints.openSigningKey(session);
        let last: TreeHead;
        do {
          const batch = await integrateBatch(session, { limit: SEQUENCER_BATCH_LIMIT, now: this.clock.now() });
          last = batch.head;
          // Until a batch finds nothing: a short batch is not the end when it held the former chain's
          // records, which integrate in batches of their own before the pending ones (audit-batch.ts).
          if (batch.integrated === 0) {
            break;
          }
        } while (!this.abort.signal.aborted);
        await this.checkpoints.signIfGrown(session, last);
        return true;
      } finally {
        await session.query('SELECT pg_advisory_unlock($1, $2)', [...SEQUENCER_LOCK_KEY]);
      }
    } finally {
      await session.release();
    }
  }

  private async loop(): Promise<void> {
    const { signal } = this.abort;
    const idlePollMs = Math.max(10, Math.floor(this.options.maxMergeDelayMs / 5));
    const checkpointEveryMs = Math.max(10, Math.floor(this.options.maxMergeDelayMs / 4));
    const retryMs = this.options.takeoverPollMs ?? 1000;
    // A failure that repeats (a wrong master key, a broken former chain) is logged at a falling rate.
    let failures = 0;
    while (!signal.aborted) {
      let session: QueryRunner | undefined;
      try {
        session = this.dataSource.createQueryRunner();
        await session.connect();
        if (!(await tryLock(session))) {
          await session.release();
          session = undefined;
          await sleep(this.options.takeoverPollMs ?? 1000, signal);
          continue;
        }
        this.holding = true;
        this.logger.log('audit sequencer: this process holds the sequencer lock');
        let lastCheckpointAt = 0;
        await this.checkpoints.openSigningKey(session);
        await this.checkpoints.signIfGrown(session, await AuditTreeStore.head(session));
        while (!signal.aborted) {
          const startedAt = this.clock.now();
          const batch = await integrateBatch(session, { limit: SEQUENCER_BATCH_LIMIT, now: startedAt });
          failures = 0;
          this.#stats.integratedRecords += batch.integrated;
          const backlog = batch.integrated === SEQUENCER_BATCH_LIMIT;
          const now = this.clock.now().getTime();
          if (!backlog || now - lastCheckpointAt >= checkpointEveryMs) {
            if (await this.checkpoints.signIfGrown(session, batch.head)) {
              lastCheckpointAt = now;
              this.#stats.signedCheckpoints += 1;
            }
          }
          if (!backlog) {
            // Batches start every idlePollMs (not idlePollMs after the previous one ended): a record that
            // just missed a batch then waits at most one period plus its own batch, not two batches and a period.
            await sleep(Math.min(idlePollMs, Math.max(0, idlePollMs - (this.clock.now().getTime() - startedAt.getTime()))), signal);
          }
        }
      } catch (error) {
        const delayMs = Math.min(retryMs * 2 ** failures, MAX_RETRY_MS);
        failures += 1;
        this.#stats.failures += 1;
        this.logger.error(`audit sequencer: ${error instanceof Error ? error.message : String(error)}; retrying in ${delayMs} ms`);
        await sleep(delayMs, signal);
      } finally {
        this.holding = false;
        // Releasing the session ends it only on error paths' broken connections; unlock explicitly otherwise.
        if (session !== undefined) {
          await session.query('SELECT pg_advisory_unlock_all()').catch(() => undefined);
          await session.release().catch(() => undefined);
        }
      }
    }
  }
}

async function tryLock(session: QueryRunner): Promise<boolean> {
  const [row] = (await session.query('SELECT pg_try_advisory_lock($1, $2) AS locked', [...SEQUENCER_LOCK_KEY])) as { locked: boolean }[];
  return row?.locked === true;
}
