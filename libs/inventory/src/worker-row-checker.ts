import { InventoryError } from './inventory-errors';
import type { TrustStore } from '@rackseal/ek-trust';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CsvRecordLike, RowCheckContext, RowChecker } from './importer';
import { concatStagingBatches, emptyStagingBatch, type StagingBatch } from './staging-batch';
import type { WorkerBatch, WorkerInit } from './row-worker';

/** The compiled worker script beside this file; absent when running from TypeScript sources (jest). */
export const ROW_WORKER_SCRIPT = join(__dirname, 'row-worker.js');

interface Pending {
  resolve(batch: StagingBatch): void;
  reject(error: Error): void;
}

/** One pool slot: its thread, the batches it owes an answer for, and the trust store it holds. */
interface Slot {
  worker: Worker;
  readonly pending: Map<number, Pending>;
  store: TrustStore | undefined;
  /** Why the thread died ('error' comes before 'exit' and says more). */
  failure?: Error;
}

/** A row-check thread stopped (out of memory, crashed, terminated) while checking a batch; the pool has replaced it. */
export class RowCheckerCrashError extends InventoryError {
  constructor(cause: Error) {
    super('inventory.row-checker-crashed', `an inventory row-check thread stopped while checking this import (${cause.message}); nothing was imported, and the thread has been replaced: retry`, {
      cause,
      // The pool has already replaced the thread: the same upload can be sent again at once.
      retryAfterSeconds: 1,
    });
    this.name = 'RowCheckerCrashError';
  }
}

/**
 * Row checks on worker threads: chain verification is CPU-bound (a leaf signature per row), so
 * spreading batches over cores raises an import's throughput while the main thread parses and
 * writes. A batch is split into one slice per worker; results come back in order. The trust store is
 * sent to a worker only when it changes (one import = one store).
 *
 * A thread that dies (its heap limit, a crash, terminate()) fails only the batches it held, with
 * RowCheckerCrashError, and is replaced at once: one bad import never disables the pool.
 */
export class WorkerRowChecker implements RowChecker {
  private readonly slots: Slot[] = [];
  private nextId = 0;
  private closing = false;

  constructor(
    threads: number,
    private readonly script = ROW_WORKER_SCRIPT,
  ) {
    for (let i = 0; i < threads; i++) {
      const slot: Slot = { worker: undefined as unknown as Worker, pending: new Map(), store: undefined };
      this.start(slot);
      this.slots.push(slot);
    }
  }

  /** A pool when the compiled worker script exists, else undefined (callers fall back to in-process). */
  static ifAvailable(threads: number): WorkerRowChecker | undefined {
    return threads > 0 && existsSync(ROW_WORKER_SCRIPT) ? new WorkerRowChecker(threads) : undefined;
  }

  /** The threads' ids, current ones only (tests terminate one to show the pool heals). */
  get threadIds(): number[] {
    return this.slots.map((slot) => slot.worker.threadId);
  }

  async check(batch: readonly CsvRecordLike[], ctx: RowCheckContext): Promise<StagingBatch> {
    const slice = Math.ceil(batch.length / this.slots.length);
    const parts = await Promise.all(
      this.slots.map((slot, i) => {
        const records = batch.slice(i * slice, (i + 1) * slice);
        if (records.length === 0) {
          return Promise.resolve(emptyStagingBatch());
        }
        if (slot.store !== ctx.store) {
          const init: WorkerInit = {
            type: 'init',
            cas: ctx.store.entries().map((e) => ({ der: e.certificate.der, anchor: e.anchor, enabled: e.enabled, label: e.label })),
          };
          slot.worker.postMessage(init);
          slot.store = ctx.store;
        }
        const id = this.nextId++;
        const message: WorkerBatch = {
          type: 'batch',
          id,
          records,
          columns: ctx.columns,
          now: ctx.now.getTime(),
          ekGraceDays: ctx.ekGraceDays,
          caGraceDays: ctx.caGraceDays,
          defaultGroup: ctx.defaultGroup,
        };
        return new Promise<StagingBatch>((resolve, reject) => {
          slot.pending.set(id, { resolve, reject });
          slot.worker.postMessage(message);
        });
      }),
    );
    return concatStagingBatches(parts);
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((slot) => slot.worker.terminate()));
  }

  private start(slot: Slot): void {
    // A worker holds one slice of a batch and the CA caches: small heaps keep the process's RSS
    // flat (V8 otherwise lets garbage — and the native keys it owns — grow to its default limits).
    // The CSV reader's limits (fields and characters per record) and the importer's batch bound keep
    // a slice far below this heap.
    const worker = new Worker(this.script, { resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8 } });
    worker.unref();
    slot.worker = worker;
    slot.store = undefined;
    slot.failure = undefined;
    worker.on('message', (message: { id: number; batch?: StagingBatch; error?: string }) => {
      const waiter = slot.pending.get(message.id);
      slot.pending.delete(message.id);
      if (message.error !== undefined || message.batch === undefined) {
        waiter?.reject(new Error(`row check failed in a worker: ${message.error ?? 'no results'}`));
      } else {
        waiter?.resolve(message.batch);
      }
    });
    worker.on('error', (error) => {
      slot.failure ??= error;
    });
    worker.on('exit', (code) => {
      if (slot.worker !== worker) {
        return;
      }
      const failure = new RowCheckerCrashError(slot.failure ?? new Error(`the thread exited with code ${code}`));
      const waiters = [...slot.pending.values()];
      slot.pending.clear();
      if (!this.closing) {
        // replaced before the waiters hear of it, so a retry right away finds a live thread
        this.start(slot);
      }
      for (const waiter of waiters) {
        waiter.reject(failure);
      }
    });
  }
}
