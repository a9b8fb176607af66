import { writeSync } from 'node:fs';
import { CliError } from '@rackseal/command-line/cli-error';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import { EkNotFoundError } from '../enrollment/choose-ek';
import { StateDirError } from '../state/state-errors';
import { UnlockError } from '../unlock/unlock-errors';
import { unlockDiskKey } from '../unlock/unlock-disk';
import { UnwrapRefusal } from '../unwrap/unwrap-errors';
import { parseTimeout } from './duration';
import type { UnlockOptions } from './tpm.command';

/**
 * Runs `rackseal-agent unlock` (see unlockCommand). Nothing reaches stdout but the key: every
 * failure is thrown before the one write, and runCommandLine prints it as one line on stderr.
 */
export async function runUnlock(options: UnlockOptions): Promise<void> {
  const timeoutMs = parseTimeout(options.timeout);
  let device: string;
  if (options.crypttabPeer !== undefined) {
    if (options.device !== undefined) {
      throw CliError.usage('unlock: --device and --crypttab-peer name the device two ways; give one');
    }
    // systemd-cryptsetup's socket path only (deploy/systemd): loaded when used, like --online below.
    const { crypttabPeer } = await import('../unlock/crypttab-peer');
    device = (await crypttabPeer(options.crypttabPeer, { crypttab: options.crypttab }).catch((error: unknown) => Promise.reject(unlockCliError(error, '--crypttab-peer')))).device;
  } else if (options.device === undefined) {
    throw CliError.usage('unlock: --device is required (the LUKS2 device whose rackseal token holds the key)');
  } else {
    device = options.device;
  }
  if (options.prewrapped !== undefined) {
    // First boot of a disk pre-wrapped at import (docs/decisions.md "Pre-wrapped disk keys"); loaded
    // only with --prewrapped, like the online path, so an ordinary offline unlock loads what it runs.
    const first = await (await import('../unlock/prewrapped-first-boot')).prewrappedFirstBoot(device, options.tpm, options.prewrapped, unlockCliError);
    if (first !== undefined) {
      writeKey(first);
      return;
    }
  }
  // The online path's code (attestation, the HTTP client, node identity) is loaded only with
  // --online: an offline unlock at boot loads what it runs (docs/decisions.md "Boot unlock, fast").
  const fresh = options.online === true ? await (await import('../unlock/online-approvals')).onlineApprovals(options, timeoutMs) : undefined;
  let key: SecretBytes;
  try {
    key = await unlockDiskKey({ luks: { device }, tpm: options.tpm, stateDir: options.stateDir, ...(fresh === undefined ? {} : { fresh }) });
  } catch (error) {
    throw unlockCliError(error, device);
  }
  writeKey(key);
}

/** A failure as the command's exit: refusals exit 1, an unusable device, TPM or input 2; always one line naming the device. */
function unlockCliError(error: unknown, where: string): CliError {
  if (error instanceof CliError) {
    return new CliError(error.exitCode, `unlock: ${where}: ${error.message}`);
  }
  const message = error instanceof Error ? error.message : String(error);
  const prefixed = message.startsWith(where) ? `unlock: ${message}` : `unlock: ${where}: ${message}`;
  if (error instanceof UnlockError) {
    if (error.code === 'unlock.no-volume') {
      return CliError.invalid(`unlock: ${message}`);
    }
    return error.code === 'unlock.not-luks2' ? CliError.usage(`unlock: ${message}`) : CliError.invalid(message.startsWith(where) ? `unlock: ${message}` : prefixed);
  }
  if (error instanceof UnwrapRefusal || error instanceof EkNotFoundError || error instanceof StateDirError || (error instanceof Error && error.name.startsWith('Envelope'))) {
    return CliError.invalid(prefixed);
  }
  return CliError.usage(prefixed);
}

/**
 * The key on fd 1 with write(2) directly, never through a stream that would keep a copy in a
 * buffer: binary, no newline, all of it or a failure (EPIPE: the reader is gone). A non-blocking
 * descriptor that is full (EAGAIN) is waited on briefly; a key is 32 or 64 bytes.
 */
function writeKey(key: SecretBytes): void {
  const bytes = key.reveal();
  let written = 0;
  try {
    while (written < bytes.length) {
      try {
        written += writeSync(1, bytes, written);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'error';
        if (code === 'EAGAIN') {
          Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
          continue;
        }
        throw CliError.usage(`unlock: cannot write the key to standard output (${code}); ${written === 0 ? 'nothing' : `${written} of ${bytes.length} bytes`} written`);
      }
    }
  } finally {
    bytes.fill(0);
  }
}
