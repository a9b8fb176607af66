import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfigOrExit } from '@rackseal/runtime';
import { createWorker } from './create-worker';

/** Time allowed after the job grace period for closing connections before the process exits anyway. */
const SHUTDOWN_MARGIN_MS = 5000;

async function main(): Promise<void> {
  const config = loadConfigOrExit('worker');
  await createWorker(config);
  const logger = new Logger('Worker');
  // Watchdog: a job stuck past the grace period can also hold a database connection that keeps
  // the pool from closing. Its Redis lock lapses and another worker takes the job over, so
  // exiting here loses nothing; hanging would keep an orchestrator waiting forever.
  const limitMs = config.worker.shutdownGraceMs + SHUTDOWN_MARGIN_MS;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      setTimeout(() => {
        logger.error({ limitMs }, 'shutdown did not finish in time; exiting');
        process.exit(1);
      }, limitMs).unref();
    });
  }
  logger.log({ env: config.env }, 'worker ready');
}

main().catch((error: unknown) => {
  process.stderr.write(`rackseal worker: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
