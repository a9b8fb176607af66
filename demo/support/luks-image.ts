import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A LUKS2 image file as an installer leaves a machine's data disk: formatted by cryptsetup with one
 * keyslot (0) that an enrollment key file opens — what the agent's disk install needs to authorise
 * the first rackseal key (README, "The agent's config file", `enrollKeyFile`). PBKDF2 with 1000
 * iterations: the key is random, and the suites and the demo format many.
 */
export function luksImage(parent: string): { image: string; enrollKeyFile: string } {
  const dir = mkdtempSync(join(parent, 'luks-'));
  const image = join(dir, 'disk.img');
  const enrollKeyFile = join(dir, 'enroll.key');
  writeFileSync(image, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '20M', image]);
  writeFileSync(enrollKeyFile, randomBytes(32), { mode: 0o600 });
  execFileSync('cryptsetup', ['luksFormat', '--batch-mode', '--type', 'luks2', '--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--key-file', enrollKeyFile, image]);
  return { image, enrollKeyFile };
}

