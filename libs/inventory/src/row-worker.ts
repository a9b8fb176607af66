/**
 * Worker thread body for WorkerRowChecker: receives the trust store once (DERs + anchor/enabled
 * flags) and then batches of CSV records; answers with validateRow's results as a StagingBatch. The store is rebuilt
 * here because KeyObjects and caches do not cross threads; each worker keeps its own CA-link cache.
 */
import { TrustStore } from '@rackseal/ek-trust';
import { parentPort } from 'node:worker_threads';
import type { ColumnMap } from './columns';
import type { CsvRecord } from './csv-reader';
import { validateRow } from './row-validator';
import { toStagingBatch } from './staging-batch';

export interface WorkerInit {
  readonly type: 'init';
  readonly cas: readonly { der: Uint8Array; anchor: boolean; enabled: boolean; label?: string }[];
}

export interface WorkerBatch {
  readonly type: 'batch';
  readonly id: number;
  readonly records: readonly CsvRecord[];
  readonly columns: ColumnMap;
  readonly now: number;
  readonly ekGraceDays: number;
  readonly caGraceDays: number;
  readonly defaultGroup?: string;
}

let store = new TrustStore();

parentPort?.on('message', (message: WorkerInit | WorkerBatch) => {
  if (message.type === 'init') {
    store = new TrustStore();
    for (const ca of message.cas) {
      store.add(Buffer.from(ca.der), { anchor: ca.anchor, enabled: ca.enabled, label: ca.label });
    }
    return;
  }
  try {
    const ctx = {
      columns: message.columns,
      store,
      now: new Date(message.now),
      ekGraceDays: message.ekGraceDays,
      caGraceDays: message.caGraceDays,
      defaultGroup: message.defaultGroup,
    };
    const batch = toStagingBatch(message.records.map((record) => validateRow(record, ctx)));
    parentPort!.postMessage({ id: message.id, batch });
  } catch (error) {
    parentPort!.postMessage({ id: message.id, error: (error as Error).message });
  }
});
