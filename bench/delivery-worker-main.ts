/**
 * A worker process for the delivery benchmark: the product's worker (apps/worker createWorker) with
 * BenchEnvelopeSealer (bench/delivery-sealer.ts). When the product's WrappingEnvelopeSealer is the
 * worker's default, pass no `sealer` here and the bench measures the product path. It reports its
 * seal count on stderr (`bench-sealer seals=N`) whenever it changed, twice a second, so the bench
 * can tell duplicate job runs (a seal whose markReady lost) from the deliveries.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfigOrExit } from '@rackseal/runtime';
import { createWorker } from '../apps/worker/src/create-worker';
import { BenchEnvelopeSealer } from './delivery-sealer';

async function main(): Promise<void> {
  const config = loadConfigOrExit('worker');
  const sealer = new BenchEnvelopeSealer();
  await createWorker(config, { sealer });
  let reported = -1;
  setInterval(() => {
    if (sealer.seals !== reported) {
      reported = sealer.seals;
      process.stderr.write(`bench-sealer seals=${reported}\n`);
    }
  }, 500).unref();
  new Logger('Worker').log({ env: config.env }, 'worker ready');
}

main().catch((error: unknown) => {
  process.stderr.write(`delivery bench worker: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
