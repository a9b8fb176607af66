import { open } from 'node:fs/promises';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import { parsePrewrappedDiskKey, type PrewrappedDiskKey } from '@rackseal/node-api-contracts';
import { firstBootFromPrewrap } from './format-prewrapped';
import { UnlockError } from './unlock-errors';

/**
 * `rackseal-agent unlock --prewrapped FILE` (docs/decisions.md "Pre-wrapped disk keys"): the
 * provisioning file read and checked, then the first boot of the device from it (format a blank
 * device with the key unsealed in the TPM, write the rackseal token). Answers the key when this boot
 * formatted the device; undefined when the device already holds its token (the ordinary offline
 * unlock follows). `asCliError` maps a failure to the command's error naming `what`.
 */
export async function prewrappedFirstBoot(device: string, tpm: string, path: string, asCliError: (error: unknown, what: string) => Error): Promise<SecretBytes | undefined> {
  const file = await readPrewrapFile(path).catch((error: unknown) => Promise.reject(asCliError(error, path)));
  try {
    return (await firstBootFromPrewrap({ device }, tpm, file)).key;
  } catch (error) {
    throw asCliError(error, device);
  }
}

/** The provisioning file (at most 64 KiB), parsed strictly: `unlock.bad-prewrap-file` when it is not one. */
async function readPrewrapFile(path: string): Promise<PrewrappedDiskKey> {
  let text: string;
  try {
    const handle = await open(path, 'r');
    try {
      const buffer = Buffer.alloc(64 * 1024 + 1);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
      if (bytesRead > 64 * 1024) {
        throw new UnlockError('unlock.bad-prewrap-file', 'is larger than 64 KiB: not a provisioning file');
      }
      text = buffer.subarray(0, bytesRead).toString('utf8');
    } finally {
      await handle.close();
    }
  } catch (error) {
    if (error instanceof UnlockError) {
      throw error;
    }
    throw new UnlockError('unlock.bad-prewrap-file', `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    return parsePrewrappedDiskKey(text);
  } catch (error) {
    throw new UnlockError('unlock.bad-prewrap-file', (error as Error).message);
  }
}
