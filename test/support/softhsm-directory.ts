import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

// No rackseal imports: the global setup loads this file without jest's module mapping.

/** A SoftHSM2 configuration with a token directory of its own (the test run's: global-setup.ts). */
export async function createSoftHsmDirectory(): Promise<{ conf: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'rackseal-softhsm-'));
  await mkdir(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  return { conf, remove: () => rm(dir, { recursive: true, force: true }) };
}

