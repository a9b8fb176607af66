import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { CliError, EXIT } from '@rackseal/command-line';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import { nodeApiPath } from '@rackseal/node-api-contracts';
import { signNodeRequest } from '@rackseal/node-identity';
import { attestAndStore, checkServerUrl, exchangeCliError, NODE_CREDENTIAL_SECRET, openStateDir, readEventLog } from '../enrollment/attest-and-store';
import type { KeyCertificationOutcome } from '../enrollment/certify-key';
import { NodeApiClient, NodeApiRefusal } from '../node-api/node-api-client';
import { type LastAttestation, saveLastAttestation } from '../state/last-attestation';
import type { NodeIdentity } from '../state/node-identity';
import type { StateDir } from '../state/state-dir';
import { StateDirError } from '../state/state-errors';
import { withTpmDevice } from '../tpm-device';
import { DEFAULT_EVENT_LOG, type RunOptions } from './tpm.command';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d{1,7})([smhd])$/;
const DEFAULT_INTERVAL_MS = 3_600_000;
/** The next attempt after an unreachable server or a TPM failure, at most. */
const RETRY_AFTER_FAILURE_MS = 300_000;
/** Shortest interval: an attestation costs the server a registration and an audit record. */
const MIN_INTERVAL_MS = 10_000;

/** `--interval 30m`, `--ask-every 1m`: a duration of s, m, h or d, at least `minMs`. */
export function parseDuration(value: string, flag: string, minMs: number): number {
  const match = DURATION.exec(value.trim());
  const ms = match === null ? Number.NaN : Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  if (!(ms >= minMs)) {
    throw CliError.usage(`${flag} must be a duration of at least ${minMs / 1000}s, e.g. 90s, 30m, 1h, 1d (not ${JSON.stringify(value)})`);
  }
  return ms;
}

type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** ±10 %: a fleet booted at once does not re-attest at once. */
const jittered = (ms: number) => Math.round(ms * (0.9 + Math.random() * 0.2));

/** One attempt, as the JSON line `run` prints and the record `status` shows. */
type Attempt = LastAttestation & { readonly machineId?: string; readonly credentialId?: string; readonly decision?: string; readonly key?: KeyCertificationOutcome };

/**
 * What GET /node/v1/self (libs/node-api-contracts self.ts, NodeSelfResponse) says, read tolerantly
 * so this agent works with a server older or newer than it: whether to re-attest now (`reattest`),
 * and the server's interval, nextAttestationDue − lastAttestedAt. Absent fields are not used.
 */
interface SelfAnswer {
  readonly reattest: boolean;
  readonly intervalMs?: number;
}

function readSelf(body: unknown): SelfAnswer {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const time = (value: unknown) => (typeof value === 'string' ? new Date(value).getTime() : Number.NaN);
  const intervalMs = time(record.nextAttestationDue) - time(record.lastAttestedAt);
  return { reattest: record.reattest === true, ...(intervalMs >= MIN_INTERVAL_MS ? { intervalMs } : {}) };
}

/** Runs `rackseal-agent run` (see runCommand). */
export async function runRun(options: RunOptions): Promise<void> {
  const fixedInterval = options.interval === undefined ? undefined : parseDuration(options.interval, '--interval', MIN_INTERVAL_MS);
  const askEveryMs = parseDuration(options.askEvery, '--ask-every', 1000);
  const state = await openStateDir(options.stateDir, false);
  let identity: NodeIdentity;
  try {
    identity = await state.loadIdentity();
  } catch (error) {
    throw error instanceof StateDirError ? new CliError(EXIT.invalid, `run: ${error.message}`) : error;
  }
  const serverUrl = checkServerUrl(options.server ?? identity.serverUrl);
  const api = new NodeApiClient({ serverUrl, attempts: 1, timeoutMs: 10_000 });
  let askSelf = true;
  /** The key of identity.credentialId, unsealed once per credential rather than at every question. */
  let signing: { credentialId: string; key: SecretBytes } | undefined;

  /** GET /node/v1/self signed with the current credential; undefined when it cannot be asked (404: stop asking). */
  const self = async (): Promise<SelfAnswer | undefined> => {
    if (!askSelf) {
      return undefined;
    }
    const path = nodeApiPath('self');
    try {
      if (signing?.credentialId !== identity.credentialId) {
        signing = { credentialId: identity.credentialId, key: await withTpmDevice(options.tpm, (client) => state.loadSealedSecret(client, NODE_CREDENTIAL_SECRET)) };
      }
      const credential = signing;
      const response = await api.send('GET', path, undefined, (body) => signNodeRequest({ credential, method: 'GET', path, body, now: new Date(), nonce: randomBytes(16) }));
      return readSelf(response.body);
    } catch (error) {
      if (error instanceof NodeApiRefusal && error.status === 404) {
        askSelf = false;
      }
      return undefined;
    }
  };

  const stop = new AbortController();
  const onSignal = () => stop.abort();
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  try {
    let intervalMs = fixedInterval ?? (await self())?.intervalMs ?? DEFAULT_INTERVAL_MS;
    for (;;) {
      const attempt = await attestOnce(options, state, identity, serverUrl);
      if (attempt.identity !== undefined) {
        identity = attempt.identity;
      }
      process.stdout.write(`${JSON.stringify(attempt.line)}\n`);
      if (options.once === true) {
        if (attempt.exitCode !== EXIT.ok) {
          throw new CliError(attempt.exitCode, `run: ${attempt.line.outcome}${attempt.line.code === undefined ? '' : `: ${attempt.line.code}`}: ${attempt.line.message ?? ''}`);
        }
        return;
      }
      // Wait one interval, asking the server now and then whether it wants an attestation sooner.
      // After a failure that is not the server's verdict (unreachable, TPM busy), try again sooner.
      const due = Date.now() + jittered(attempt.line.outcome === 'attested' || attempt.line.outcome === 'refused' ? intervalMs : Math.min(intervalMs, RETRY_AFTER_FAILURE_MS));
      while (!stop.signal.aborted && Date.now() < due) {
        try {
          await delay(Math.min(askEveryMs, due - Date.now()), undefined, { signal: stop.signal });
        } catch {
          break; // aborted: SIGTERM
        }
        const answer = Date.now() < due ? await self() : undefined;
        if (fixedInterval === undefined && answer?.intervalMs !== undefined) {
          intervalMs = answer.intervalMs;
        }
        if (answer?.reattest === true) {
          break;
        }
      }
      if (stop.signal.aborted) {
        return;
      }
    }
  } finally {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  }
}

/** One attestation, never throwing: its line, its exit code for --once, and the new identity on success. */
async function attestOnce(
  options: RunOptions,
  state: StateDir,
  previous: NodeIdentity,
  serverUrl: string,
): Promise<{ line: Attempt; exitCode: ExitCode; identity?: NodeIdentity }> {
  const at = () => new Date().toISOString();
  let line: Attempt;
  let exitCode: ExitCode;
  let identity: NodeIdentity | undefined;
  try {
    const eventLog = await readEventLog(options.eventLog, options.eventLog === DEFAULT_EVENT_LOG);
    const outcome = await attestAndStore({ command: 'run', serverUrl, tpm: options.tpm, ek: { ekPubHash: previous.ekPubHash }, ...(eventLog.bytes === undefined ? {} : { eventLog: eventLog.bytes }), state, previous });
    identity = outcome.identity;
    const { response } = outcome.result;
    line = {
      at: response.attestedAt,
      outcome: 'attested',
      state: response.state,
      machineId: response.machineId,
      credentialId: response.credentialId,
      decision: response.policy.decision,
      lines: response.policy.summary,
      key: outcome.key,
    };
    exitCode = EXIT.ok;
  } catch (error) {
    if (error instanceof NodeApiRefusal) {
      line = { at: at(), outcome: 'refused', code: error.code, message: error.serverMessage, lines: error.lines };
      exitCode = EXIT.invalid;
    } else {
      const failure = exchangeCliError('run', error);
      const message = failure instanceof Error ? failure.message.replace(/^run: /, '') : String(failure);
      line = { at: at(), outcome: /cannot reach the server/.test(message) ? 'unreachable' : 'failed', message };
      exitCode = failure instanceof CliError ? failure.exitCode : EXIT.usage;
    }
  }
  const { machineId: _m, credentialId: _c, decision: _d, key: _k, ...record } = line;
  await saveLastAttestation(state.path, record).catch(() => undefined);
  return { line, exitCode, ...(identity === undefined ? {} : { identity }) };
}
