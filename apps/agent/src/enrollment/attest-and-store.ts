import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { ATTESTATION_LIMITS } from '@rackseal/node-api-contracts';
import { CliError } from '@rackseal/command-line';
import { NodeApiClient, NodeApiProtocolError, NodeApiRefusal, NodeApiUnreachableError } from '../node-api/node-api-client';
import type { NodeIdentity } from '../state/node-identity';
import { StateDir } from '../state/state-dir';
import { StateDirError } from '../state/state-errors';
import { withTpmDevice } from '../tpm-device';
import { ExchangeProtocolError, type ExchangeResult, ExchangeTpmChangedError, runAttestationExchange } from './attestation-exchange';
import { ImaListError } from './ima-window';
import { type EkChoice, EkNotFoundError, ENROLL_EK_KINDS, type EnrollEkKind } from './choose-ek';
import { ensureCertifiedKey, type KeyCertificationOutcome } from './certify-key';

/** The sealed secret holding the node credential's HMAC key (state-dir.ts: `node-credential.sealed`). */
export const NODE_CREDENTIAL_SECRET = 'node-credential';

/** `--server`: an http(s) URL without credentials in it (it is written to identity.json). */
export function checkServerUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw CliError.usage(`--server ${JSON.stringify(value)} is not a URL (e.g. https://rackseal.example)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw CliError.usage(`--server must be an http or https URL, not ${url.protocol}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw CliError.usage('--server must not carry a user name or password');
  }
  return value.replace(/\/+$/, '');
}

export function checkEkKind(value: string): EnrollEkKind {
  const kind = ENROLL_EK_KINDS.find((k) => k === value);
  if (kind === undefined) {
    throw CliError.usage(`--ek must be one of ${ENROLL_EK_KINDS.join(', ')}`);
  }
  return kind;
}

export interface EventLogChoice {
  readonly bytes?: Buffer;
  /** Why none is sent, for the output. */
  readonly note?: string;
}

/**
 * `--event-log`: `none` sends none; the default path missing (no TPM driver log, a VM without one)
 * sends none and says so; a file given by hand must be readable. Bounded by what the server takes.
 */
export async function readEventLog(path: string, isDefault: boolean): Promise<EventLogChoice> {
  if (path === 'none') {
    return { note: 'no event log sent (--event-log none)' };
  }
  let handle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    if (isDefault && code === 'ENOENT') {
      return { note: `no event log sent: ${path} does not exist` };
    }
    throw CliError.usage(`--event-log ${path}: cannot read it (${code})`);
  }
  try {
    const limit = ATTESTATION_LIMITS.eventLogBytes;
    const buffer = Buffer.alloc(limit + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) {
        break;
      }
      length += bytesRead;
      if (length > limit) {
        throw CliError.usage(`--event-log ${path} is larger than the ${limit} bytes the server takes`);
      }
    }
    return length === 0 ? { note: `no event log sent: ${path} is empty` } : { bytes: Buffer.from(buffer.subarray(0, length)) };
  } catch (error) {
    if (error instanceof CliError) {
      throw error;
    }
    throw CliError.usage(`--event-log ${path}: cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  } finally {
    await handle.close();
  }
}

/** Opens the state dir, or says why it cannot be used (exit 2: nothing was attempted). */
export async function openStateDir(path: string, create: boolean): Promise<StateDir> {
  try {
    return await StateDir.open(path, { create });
  } catch (error) {
    throw error instanceof StateDirError ? new CliError(error.kind === 'not-enrolled' ? 1 : 2, error.message) : error;
  }
}

export interface AttestInput {
  readonly command: string;
  readonly serverUrl: string;
  readonly tpm: string;
  /** The EK kind (enroll), or the identity's ekPubHash (run: the same machine, whatever kind). */
  readonly ek: EkChoice;
  readonly eventLog?: Buffer;
  /** The IMA measurement list (binary) to send entries of when the server asks. */
  readonly imaList?: string;
  readonly state: StateDir;
  /** When re-attesting: the identity to keep enrolledAt from. */
  readonly previous?: NodeIdentity;
  /** Told of each retry (the command prints it on stderr). */
  readonly onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  /** Attempts of each HTTP call (default 5). */
  readonly attempts?: number;
  /** One HTTP attempt, connect to last byte (`--timeout`; default the client's 30 s). */
  readonly timeoutMs?: number;
}

export interface AttestOutcome {
  readonly result: ExchangeResult;
  readonly identity: NodeIdentity;
  /** The key certification after the attestation (certify-key.ts). */
  readonly key: KeyCertificationOutcome;
}

/**
 * One exchange, and on `attested` the machine's certified key made sure of (certify-key.ts: a new
 * one only when the server has not the one the dir holds), the new node credential sealed under
 * this TPM's storage key, then identity.json naming it (in that order: identity.json never names a
 * credential the dir does not hold). Nothing is written on a refusal. The TPM is opened for each TPM
 * phase and closed before every call to the server (attestation-exchange.ts, TpmOpener).
 */
export async function attestAndStore(input: AttestInput): Promise<AttestOutcome> {
  const api = new NodeApiClient({
    serverUrl: input.serverUrl,
    ...(input.onRetry === undefined ? {} : { onRetry: input.onRetry }),
    ...(input.attempts === undefined ? {} : { attempts: input.attempts }),
    ...(input.timeoutMs === undefined ? {} : { timeoutMs: input.timeoutMs }),
  });
  const result = await runAttestationExchange((work) => withTpmDevice(input.tpm, work), api, input.ek, input.eventLog, input.imaList);
  const key = await ensureCertifiedKey(result.withAk, api, result.credential, input.state.path);
  return withTpmDevice(input.tpm, async (client) => {
    await input.state.saveSealedSecret(client, NODE_CREDENTIAL_SECRET, result.credential.key);
    const identity: NodeIdentity = {
      serverUrl: input.serverUrl,
      machineId: result.response.machineId,
      registrationId: result.registrationId,
      credentialId: result.credential.credentialId,
      ekPubHash: result.ekPubHash,
      enrolledAt: input.previous?.enrolledAt ?? new Date().toISOString(),
    };
    await input.state.saveIdentity(identity);
    return { result, identity, key };
  });
}

/**
 * A failure of the exchange as the command's exit: the server's refusal is exit 1 with its code and
 * message (and explanation lines); an unreachable or foreign server exit 2 naming it.
 */
export function exchangeCliError(command: string, error: unknown): unknown {
  if (error instanceof NodeApiRefusal) {
    // code, message and lines are printable and bounded already (node-api-client.ts refusalOf).
    return CliError.invalid([`${command}: refused by the server: ${error.code}: ${error.serverMessage}`, ...error.lines.map((l) => `  ${l}`)].join('\n'));
  }
  if (error instanceof NodeApiUnreachableError || error instanceof NodeApiProtocolError || error instanceof ExchangeProtocolError || error instanceof ExchangeTpmChangedError) {
    return CliError.usage(`${command}: ${error.message}`);
  }
  if (error instanceof StateDirError || error instanceof ImaListError) {
    return CliError.usage(`${command}: ${error.message}`);
  }
  if (error instanceof EkNotFoundError) {
    return CliError.invalid(`${command}: ${error.message}`);
  }
  if (error instanceof CliError) {
    return new CliError(error.exitCode, `${command}: ${error.message}`);
  }
  return error;
}
