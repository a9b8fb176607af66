/**
 * A worker process for the delivery benchmark: the product's worker (apps/worker createWorker) with
 * the product's envelope sealer (libs/deliveries WrappingEnvelopeSealer, the worker's default). It
 * counts the seals that sealer makes in this process and reports the count on stderr
 * (`bench-sealer seals=N`) whenever it changed, twice a second, so the bench can tell duplicate job
 * runs (a seal whose `pending → ready` lost) from the deliveries. The count wraps the instance's
 * `seal`; the sealing itself is the product's.
 */
import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { EnvelopeSealer, type SealInput } from '@rackseal/deliveries';
import { loadConfigOrExit } from '@rackseal/runtime';
import { createWorker } from '../apps/worker/src/create-worker';

async function main(): Promise<void> {
  const config = loadConfigOrExit('worker');
  const app = await createWorker(config);
  const sealer = app.get(EnvelopeSealer);
  const seal = sealer.seal.bind(sealer);
  let seals = 0;
  sealer.seal = (input: SealInput) => {
    seals += 1;
    return seal(input);
  };
  let reported = -1;
  setInterval(() => {
    if (seals !== reported) {
      reported = seals;
      process.stderr.write(`bench-sealer seals=${reported}\n`);
    }
  }, 500).unref();
  new Logger('Worker').log({ env: config.env }, 'worker ready');
}

main().catch((error: unknown) => {
  process.stderr.write(`delivery bench worker: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
