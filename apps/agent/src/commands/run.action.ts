import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { CliError, EXIT } from '@rackseal/command-line';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import { nodeApiPath } from '@rackseal/node-api-contracts';
import { signNodeRequest } from '@rackseal/node-identity';
import { attestAndStore, checkServerUrl, exchangeCliError, NODE_CREDENTIAL_SECRET, openStateDir, readEventLog } from '../enrollment/attest-and-store';
import type { KeyCertificationOutcome } from '../enrollment/certify-key';
import { DeliveryLoop } from '../deliveries/delivery-loop';
import { type AgentConfig, AgentConfigError } from '../install/agent-config';
import { DEFAULT_AGENT_CONFIG_PATH, loadAgentConfig } from '../install/agent-config-file';
import { NodeApiClient, NodeApiRefusal } from '../node-api/node-api-client';
import { type LastAttestation, saveLastAttestation } from '../state/last-attestation';
import type { NodeIdentity } from '../state/node-identity';
import type { StateDir } from '../state/state-dir';
import { StateDirError } from '../state/state-errors';
import { AgentMetricsRecorder, type DeliveryOutcome, DELIVERY_OUTCOMES } from '../state/agent-metrics';
import { onTpmFailure, withTpmDevice } from '../tpm-device';
import { parseDuration, parseTimeout } from './duration';
import { DEFAULT_EVENT_LOG, type RunOptions } from './tpm.command';

const DEFAULT_INTERVAL_MS = 3_600_000;
/** The next attempt after an unreachable server or a TPM failure, at most. */
const RETRY_AFTER_FAILURE_MS = 300_000;
/** Shortest interval: an attestation costs the server a registration and an audit record. */
const MIN_INTERVAL_MS = 10_000;

/** The server's refusal for a revoked machine (libs/attestation attestation-errors.ts): `run` stops on it. */
const REVOKED = 'attestation.machine-revoked';
/** The machine rebooted since the server's runtime state: its next start asks for the whole IMA list, at once. */
const IMA_RESTART = 'attestation.ima-restart';

type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** ±10 %: a fleet booted at once does not re-attest at once. */
const jittered = (ms: number) => Math.round(ms * (0.9 + Math.random() * 0.2));

/** One attempt, as the JSON line `run` prints and the record `status` shows. */
type Attempt = LastAttestation & {
  readonly machineId?: string;
  readonly credentialId?: string;
  readonly decision?: string;
  readonly key?: KeyCertificationOutcome;
  /** The runtime policy's verdict on the IMA entries sent, when the group has one. */
  readonly ima?: { readonly decision: string; readonly entriesChecked: number; readonly nextEntry: number };
};

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
  const timeoutMs = parseTimeout(options.timeout);
  const state = await openStateDir(options.stateDir, false);
  let identity: NodeIdentity;
  try {
    identity = await state.loadIdentity();
  } catch (error) {
    throw error instanceof StateDirError ? new CliError(EXIT.invalid, `run: ${error.message}`) : error;
  }
  const serverUrl = checkServerUrl(options.server ?? identity.serverUrl);
  const api = new NodeApiClient({ serverUrl, attempts: 1, timeoutMs });
  // The agent's own counters (agent-metrics.json, shown by `status`): attempts, deliveries, TPM failures.
  const metrics = new AgentMetricsRecorder(state.path);
  onTpmFailure((kind, error) => void metrics.record({ type: 'tpm-error', at: new Date().toISOString(), kind, message: error.message }));
  let askSelf = true;
  /** The key of identity.credentialId, unsealed once per credential rather than at every question. */
  let signing: { credentialId: string; key: SecretBytes } | undefined;
  const credential = async (): Promise<{ credentialId: string; key: SecretBytes }> => {
    if (signing?.credentialId !== identity.credentialId) {
      signing = { credentialId: identity.credentialId, key: await withTpmDevice(options.tpm, (client) => state.loadSealedSecret(client, NODE_CREDENTIAL_SECRET)) };
    }
    return signing;
  };
  // Between attestations the agent long-polls its mailbox and installs what comes (not with --once).
  const deliveries =
    options.once === true
      ? undefined
      : new DeliveryLoop({
          serverUrl,
          tpm: options.tpm,
          stateDir: state.path,
          config: await installsConfig(options),
          timeoutMs,
          ekPubHash: () => identity.ekPubHash,
          credential,
          write: (line) => {
            if (typeof line.outcome === 'string' && (DELIVERY_OUTCOMES as readonly string[]).includes(line.outcome)) {
              const at = typeof line.at === 'string' ? line.at : new Date().toISOString();
              void metrics.record({ type: 'delivery', at, outcome: line.outcome as DeliveryOutcome, ...deliveryLabels(line) });
            }
            process.stdout.write(`${JSON.stringify(line)}\n`);
          },
        });

  /** GET /node/v1/self signed with the current credential; undefined when it cannot be asked (404: stop asking). */
  const self = async (): Promise<SelfAnswer | undefined> => {
    if (!askSelf) {
      return undefined;
    }
    const path = nodeApiPath('self');
    try {
      const signer = await credential();
      const response = await api.send('GET', path, undefined, (body) => signNodeRequest({ credential: signer, method: 'GET', path, body, now: new Date(), nonce: randomBytes(16) }));
      return readSelf(response.body);
    } catch (error) {
      if (error instanceof NodeApiRefusal && error.status === 404) {
        askSelf = false;
      }
      // The credential is dead: the machine was revoked (or enrolled again elsewhere). Attesting
      // now tells which, and a revoked machine's run ends at that answer rather than an interval later.
      if (error instanceof NodeApiRefusal && error.code === 'node.unknown-credential') {
        return { reattest: true };
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
      const attempt = await attestOnce(options, state, identity, serverUrl, timeoutMs);
      await metrics.record({ type: 'attestation', at: attempt.line.at, outcome: attempt.line.outcome });
      if (attempt.identity !== undefined) {
        identity = attempt.identity;
      }
      process.stdout.write(`${JSON.stringify(attempt.line)}\n`);
      if (attempt.line.code === REVOKED) {
        // Final on the server's side: a revoked machine never attests again, so there is nothing to wait for.
        throw new CliError(EXIT.invalid, `run: the machine is revoked; a revoked machine never attests again (the operator imports it anew): ${attempt.line.message ?? ''}`);
      }
      if (options.once === true) {
        if (attempt.exitCode !== EXIT.ok) {
          throw new CliError(attempt.exitCode, `run: ${attempt.line.outcome}${attempt.line.code === undefined ? '' : `: ${attempt.line.code}`}: ${attempt.line.message ?? ''}`);
        }
        return;
      }
      // Wait one interval, asking the server now and then whether it wants an attestation sooner.
      // After a failure that is not the server's verdict (unreachable, TPM busy), try again sooner.
      const due = Date.now() + jittered(attempt.line.outcome === 'attested' || attempt.line.outcome === 'refused' ? intervalMs : Math.min(intervalMs, RETRY_AFTER_FAILURE_MS));
      // The mailbox is polled only while the machine is attested: the server refuses it otherwise.
      const polling = deliveries !== undefined && attempt.line.outcome === 'attested' && attempt.line.state === 'attested';
      if (polling) {
        await deliveries.refreshApprovals();
      }
      while (!stop.signal.aborted && Date.now() < due) {
        if (polling) {
          if ((await deliveries.runFor(Math.min(askEveryMs, due - Date.now()), stop.signal)) === 'reattest') {
            break; // the credential is dead: attesting tells whether the machine was revoked
          }
        } else {
          try {
            await delay(Math.min(askEveryMs, due - Date.now()), undefined, { signal: stop.signal });
          } catch {
            break; // aborted: SIGTERM
          }
        }
        if (stop.signal.aborted) {
          break;
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
    onTpmFailure(undefined);
    await metrics.flush();
  }
}

/** The secret and the refusal code of a delivery line, when it has them as text. */
function deliveryLabels(line: { readonly secret?: unknown; readonly code?: unknown }): { secret?: string; code?: string } {
  return { ...(typeof line.secret === 'string' ? { secret: line.secret } : {}), ...(typeof line.code === 'string' ? { code: line.code } : {}) };
}

/** The config file's installs (the same file withAgentConfig read for the defaults); a bad file is exit 2 naming the field. */
async function installsConfig(options: RunOptions): Promise<AgentConfig> {
  try {
    return await loadAgentConfig(options.config ?? DEFAULT_AGENT_CONFIG_PATH, options.config === undefined);
  } catch (error) {
    throw error instanceof AgentConfigError ? CliError.usage(`run: config file ${error.message}`) : error;
  }
}

/** One attestation, never throwing: its line, its exit code for --once, and the new identity on success. */
async function attestOnce(
  options: RunOptions,
  state: StateDir,
  previous: NodeIdentity,
  serverUrl: string,
  timeoutMs: number,
): Promise<{ line: Attempt; exitCode: ExitCode; identity?: NodeIdentity }> {
  const at = () => new Date().toISOString();
  let line: Attempt;
  let exitCode: ExitCode;
  let identity: NodeIdentity | undefined;
  try {
    const eventLog = await readEventLog(options.eventLog, options.eventLog === DEFAULT_EVENT_LOG);
    const input = { command: 'run', serverUrl, tpm: options.tpm, ek: { ekPubHash: previous.ekPubHash }, ...(eventLog.bytes === undefined ? {} : { eventLog: eventLog.bytes }), imaList: options.imaList, state, previous, timeoutMs };
    const outcome = await attestAndStore(input).catch((error: unknown) => {
      // Once, at once: the refusal reset the server's state, so this start asks for the list from entry 0.
      if (error instanceof NodeApiRefusal && error.code === IMA_RESTART) {
        return attestAndStore(input);
      }
      throw error;
    });
    identity = outcome.identity;
    const { response } = outcome.result;
    line = {
      at: response.attestedAt,
      outcome: 'attested',
      state: response.state,
      machineId: response.machineId,
      credentialId: response.credentialId,
      decision: response.policy.decision,
      lines: [...response.policy.summary, ...(response.ima?.failures ?? [])],
      key: outcome.key,
      ...(response.ima === undefined ? {} : { ima: { decision: response.ima.decision, entriesChecked: response.ima.entriesChecked, nextEntry: response.ima.nextEntry } }),
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
  const { machineId: _m, credentialId: _c, decision: _d, key: _k, ima: _i, ...record } = line;
  await saveLastAttestation(state.path, record).catch(() => undefined);
  return { line, exitCode, ...(identity === undefined ? {} : { identity }) };
}
