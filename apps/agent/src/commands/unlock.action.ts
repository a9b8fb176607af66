import { writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { CliError } from '@rackseal/command-line/cli-error';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import { type ApprovalsResponse, parsePrewrappedDiskKey, type PrewrappedDiskKey } from '@rackseal/node-api-contracts';
import { attestAndStore, checkServerUrl, exchangeCliError, NODE_CREDENTIAL_SECRET, openStateDir, readEventLog } from '../enrollment/attest-and-store';
import { EkNotFoundError } from '../enrollment/attestation-exchange';
import { NodeApiClient } from '../node-api/node-api-client';
import { StateDirError } from '../state/state-errors';
import { withTpmDevice } from '../tpm-device';
import { recordApprovals } from '../unlock/approvals-store';
import { crypttabPeer } from '../unlock/crypttab-peer';
import { firstBootFromPrewrap } from '../unlock/format-prewrapped';
import { UnlockError } from '../unlock/unlock-errors';
import { unlockDiskKey } from '../unlock/unlock-disk';
import { UnwrapRefusal } from '../unwrap/unwrap-errors';
import { parseTimeout } from './duration';
import { DEFAULT_EVENT_LOG, type UnlockOptions } from './tpm.command';

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
    device = (await crypttabPeer(options.crypttabPeer, { crypttab: options.crypttab }).catch((error: unknown) => Promise.reject(unlockCliError(error, '--crypttab-peer')))).device;
  } else if (options.device === undefined) {
    throw CliError.usage('unlock: --device is required (the LUKS2 device whose rackseal token holds the key)');
  } else {
    device = options.device;
  }
  if (options.prewrapped !== undefined) {
    const file = await readPrewrapFile(options.prewrapped).catch((error: unknown) => Promise.reject(unlockCliError(error, options.prewrapped!)));
    let first;
    try {
      first = await firstBootFromPrewrap({ device }, options.tpm, file);
    } catch (error) {
      throw unlockCliError(error, device);
    }
    if (first.key !== undefined) {
      writeKey(first.key);
      return;
    }
  }
  const fresh = options.online === true ? await onlineApprovals(options, timeoutMs) : undefined;
  let key: SecretBytes;
  try {
    key = await unlockDiskKey({ luks: { device }, tpm: options.tpm, stateDir: options.stateDir, ...(fresh === undefined ? {} : { fresh }) });
  } catch (error) {
    throw unlockCliError(error, device);
  }
  writeKey(key);
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

/**
 * `--online`: a fresh attestation with the identity's EK (what `run` does, attest-and-store.ts),
 * then GET /node/v1/approvals signed with the node credential it just stored, kept in the state
 * dir's cache for the next offline boot. Strict: a server that refuses (revoked, quarantined, a
 * boot state its policy does not allow) or cannot be reached prints no key — that is what an
 * operator asks for with --online; without it the unlock is offline.
 */
async function onlineApprovals(options: UnlockOptions, timeoutMs: number): Promise<ApprovalsResponse> {
  const state = await openStateDir(options.stateDir, false);
  try {
    const identity = await state.loadIdentity();
    const serverUrl = checkServerUrl(options.server ?? identity.serverUrl);
    const eventLog = await readEventLog(DEFAULT_EVENT_LOG, true);
    const outcome = await attestAndStore({ command: 'unlock', serverUrl, tpm: options.tpm, ek: { ekPubHash: identity.ekPubHash }, ...(eventLog.bytes === undefined ? {} : { eventLog: eventLog.bytes }), state, previous: identity, timeoutMs, attempts: 2 });
    const key = await withTpmDevice(options.tpm, (client) => state.loadSealedSecret(client, NODE_CREDENTIAL_SECRET));
    const approvals = await new NodeApiClient({ serverUrl, timeoutMs, attempts: 2 }).approvals({ credentialId: outcome.identity.credentialId, key });
    await recordApprovals(state.path, approvals);
    return approvals;
  } catch (error) {
    const failure = exchangeCliError('unlock', error);
    throw failure instanceof CliError ? failure : CliError.usage(`unlock: ${(error as Error).message}`);
  }
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
