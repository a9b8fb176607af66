/**
 * A worker process for the delivery suites: the product's worker (apps/worker createWorker) with the
 * test-only TestEnvelopeSealer in place of the wrapping library's adapter, its fleet key from
 * RACKSEAL_TEST_SEALER_KEY (hex), each seal stretched by RACKSEAL_TEST_SEAL_DELAY_MS (default 0). Started by startDeliveryWorker (test/support/processes.ts).
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfigOrExit } from '@rackseal/runtime';
import { createWorker } from '../../apps/worker/src/create-worker';
import { TestEnvelopeSealer } from './test-envelope-sealer';

async function main(): Promise<void> {
  const config = loadConfigOrExit('worker');
  const key = Buffer.from(process.env.RACKSEAL_TEST_SEALER_KEY ?? '', 'hex');
  if (key.length !== 32) {
    throw new Error('RACKSEAL_TEST_SEALER_KEY must be 32 bytes of hex');
  }
  const delayMs = Number(process.env.RACKSEAL_TEST_SEAL_DELAY_MS ?? '0');
  await createWorker(config, { sealer: new TestEnvelopeSealer(key, delayMs) });
  new Logger('Worker').log({ env: config.env }, 'worker ready');
}

main().catch((error: unknown) => {
  process.stderr.write(`delivery test worker: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
