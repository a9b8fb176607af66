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

/**
 * Row checks on worker threads: chain verification is CPU-bound (a leaf signature per row), so
 * spreading batches over cores raises an import's throughput while the main thread parses and
 * writes. A batch is split into one slice per worker; results come back in order. The trust store is
 * sent to a worker only when it changes (one import = one store).
 */
export class WorkerRowChecker implements RowChecker {
  private readonly workers: Worker[] = [];
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private sentStore: TrustStore | undefined;
  private failure: Error | undefined;

  constructor(threads: number, script = ROW_WORKER_SCRIPT) {
    for (let i = 0; i < threads; i++) {
      // A worker holds one slice of a batch and the CA caches: small heaps keep the process's RSS
      // flat (V8 otherwise lets garbage — and the native keys it owns — grow to its default limits).
      const worker = new Worker(script, { resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 8 } });
      worker.unref();
      worker.on('message', (message: { id: number; batch?: StagingBatch; error?: string }) => {
        const waiter = this.pending.get(message.id);
        this.pending.delete(message.id);
        if (message.error !== undefined || message.batch === undefined) {
          waiter?.reject(new Error(`row check failed in a worker: ${message.error ?? 'no results'}`));
        } else {
          waiter?.resolve(message.batch);
        }
      });
      worker.on('error', (error) => this.fail(error));
      worker.on('exit', (code) => {
        if (code !== 0) {
          this.fail(new Error(`inventory row worker exited with code ${code}`));
        }
      });
      this.workers.push(worker);
    }
  }

  /** A pool when the compiled worker script exists, else undefined (callers fall back to in-process). */
  static ifAvailable(threads: number): WorkerRowChecker | undefined {
    return threads > 0 && existsSync(ROW_WORKER_SCRIPT) ? new WorkerRowChecker(threads) : undefined;
  }

  async check(batch: readonly CsvRecordLike[], ctx: RowCheckContext): Promise<StagingBatch> {
    if (this.failure !== undefined) {
      throw this.failure;
    }
    if (this.sentStore !== ctx.store) {
      const init: WorkerInit = {
        type: 'init',
        cas: ctx.store.entries().map((e) => ({ der: e.certificate.der, anchor: e.anchor, enabled: e.enabled, label: e.label })),
      };
      for (const worker of this.workers) {
        worker.postMessage(init);
      }
      this.sentStore = ctx.store;
    }
    const slice = Math.ceil(batch.length / this.workers.length);
    const parts = await Promise.all(
      this.workers.map((worker, i) => {
        const records = batch.slice(i * slice, (i + 1) * slice);
        if (records.length === 0) {
          return Promise.resolve(emptyStagingBatch());
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
          this.pending.set(id, { resolve, reject });
          worker.postMessage(message);
        });
      }),
    );
    return concatStagingBatches(parts);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const waiter of this.pending.values()) {
      waiter.reject(error);
    }
    this.pending.clear();
  }
}
