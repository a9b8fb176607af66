import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfigOrExit } from '@rackseal/runtime';
import { createWorker } from './create-worker';

async function main(): Promise<void> {
  const config = loadConfigOrExit('worker');
  await createWorker(config);
  new Logger('Worker').log({ env: config.env }, 'worker ready');
}

main().catch((error: unknown) => {
  process.stderr.write(`rackseal worker: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
