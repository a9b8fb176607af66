// Moved to demo/support/processes.ts, which `npm run demo` runs on too; re-exported so the suites' imports stay (docs/decisions.md, "The demo").
import { type RunningProcess, startDistFile } from '../../demo/support/processes';

export * from '../../demo/support/processes';

/** A worker with the test-only envelope sealer (test/support/delivery-worker-main.ts), resolved once it is ready. */
export async function startDeliveryWorker(env: NodeJS.ProcessEnv, sealerKey: Buffer): Promise<RunningProcess> {
  const proc = startDistFile('test/support/delivery-worker-main.js', { ...env, LOG_LEVEL: 'info', RACKSEAL_TEST_SEALER_KEY: sealerKey.toString('hex') });
  await proc.waitForLog((l) => l.msg === 'worker ready');
  return proc;
}
