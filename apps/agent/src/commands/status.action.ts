import { randomBytes } from 'node:crypto';
import { CliError, EXIT } from '@rackseal/command-line';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import { nodeApiPath, SELF_ROUTE } from '@rackseal/node-api-contracts';
import { signNodeRequest } from '@rackseal/node-identity';
import { checkServerUrl, NODE_CREDENTIAL_SECRET, openStateDir } from '../enrollment/attest-and-store';
import { NodeApiClient, NodeApiRefusal } from '../node-api/node-api-client';
import { MAX_SERVER_CODE, MAX_SERVER_LINE, serverText } from '../node-api/server-text';
import { type AgentMetrics, loadAgentMetrics } from '../state/agent-metrics';
import { type LastAttestation, loadLastAttestation } from '../state/last-attestation';
import type { NodeIdentity } from '../state/node-identity';
import { StateDirError } from '../state/state-errors';
import { withTpmDevice } from '../tpm-device';
import { parseTimeout } from './duration';
import type { StatusOptions } from './tpm.command';

/** What the server said of the machine (GET /node/v1/self), when it was asked. */
interface ServerView {
  readonly url: string;
  /** The machine's state as the server answered it (attested, attesting, quarantined). */
  readonly state?: string;
  readonly reattest?: boolean;
  /** The server refused the signed request: revoked, quarantined, clock off… (exit 1). */
  readonly refused?: { readonly code: string; readonly message: string; readonly revoked: boolean };
  /** The server could not be asked (unreachable, not the node API): reported, not an error. */
  readonly unanswered?: string;
}

interface StatusReport {
  readonly enrolled: boolean;
  readonly stateDir: string;
  readonly identity?: NodeIdentity;
  readonly lastAttestation?: LastAttestation;
  /** The counters `run` keeps (agent-metrics.json): attempts, deliveries, TPM failures, with the last of each. */
  readonly metrics?: AgentMetrics;
  /** Whether this TPM unseals the node credential; undefined when there is no identity to check. */
  readonly credentialOpens?: boolean;
  readonly server?: ServerView;
  readonly problem?: string;
}

/**
 * Runs `rackseal-agent status` (see statusCommand): identity.json and last-attestation.json read,
 * the sealed credential unsealed to show it opens in this TPM, then (unless --offline) GET
 * /node/v1/self signed with it, so a machine the server revoked or quarantined is not reported as
 * fine from the state dir alone. A revoked machine's credential is ended with it (libs/attestation
 * NodeCredentials), so the server answers 401 node.unknown-credential; a quarantined one answers
 * state `quarantined` (the self route accepts its credential: libs/node-api-contracts self.ts).
 * Both exit 1.
 */
export async function runStatus(options: StatusOptions): Promise<void> {
  const timeoutMs = parseTimeout(options.timeout);
  const report = await statusReport(options, timeoutMs);
  process.stdout.write(options.json === true ? `${JSON.stringify(report)}\n` : statusText(report));
  if (!report.enrolled || report.credentialOpens !== true || report.server?.refused !== undefined || report.server?.state === 'quarantined') {
    // The report is the message; stderr names the cause in one line, as every refusal does.
    throw CliError.invalid(`status: ${report.problem ?? 'not enrolled'}`);
  }
}

async function statusReport(options: StatusOptions, timeoutMs: number): Promise<StatusReport> {
  let state;
  try {
    state = await openStateDir(options.stateDir, false);
  } catch (error) {
    if (error instanceof CliError && error.exitCode === EXIT.invalid) {
      return { enrolled: false, stateDir: options.stateDir, problem: error.message };
    }
    throw error;
  }
  let identity: NodeIdentity;
  try {
    identity = await state.loadIdentity();
  } catch (error) {
    if (error instanceof StateDirError) {
      return { enrolled: false, stateDir: state.path, problem: error.message };
    }
    throw error;
  }
  const lastAttestation = await loadLastAttestation(state.path).catch(() => undefined);
  const metrics = await loadAgentMetrics(state.path).catch(() => undefined);
  const base = { enrolled: true, stateDir: state.path, identity, ...(lastAttestation === undefined ? {} : { lastAttestation }), ...(metrics === undefined ? {} : { metrics }) };
  let key: SecretBytes;
  try {
    // The TPM is closed again before the server is asked (it is never held across a network wait).
    key = await withTpmDevice(options.tpm, (client) => state.loadSealedSecret(client, NODE_CREDENTIAL_SECRET));
  } catch (error) {
    if (error instanceof StateDirError) {
      return { ...base, credentialOpens: false, problem: `the node credential does not open in this TPM: ${error.message}` };
    }
    throw error;
  }
  if (options.offline === true) {
    return { ...base, credentialOpens: true };
  }
  const server = await askServer(options.server === undefined ? identity.serverUrl : checkServerUrl(options.server), identity, key, timeoutMs);
  return {
    ...base,
    credentialOpens: true,
    server,
    ...(server.state === 'quarantined'
      ? { problem: `the server ${server.url} has this machine quarantined: its last attestation did not match its group's PCR policy (the operator sees why with rackseal machines show)` }
      : {}),
    ...(server.refused === undefined
      ? {}
      : {
          problem: server.refused.revoked
            ? `the server ${server.url} refuses this machine's node credential: the machine was revoked, or enrolled again elsewhere since (${server.refused.code}: ${server.refused.message})`
            : `the server ${server.url} refuses this machine: ${server.refused.code}: ${server.refused.message}`,
        }),
  };
}

/** GET /node/v1/self, signed with the node credential, one attempt: what the server says of this machine. */
async function askServer(url: string, identity: NodeIdentity, credential: SecretBytes, timeoutMs: number): Promise<ServerView> {
  const path = nodeApiPath(SELF_ROUTE);
  const api = new NodeApiClient({ serverUrl: url, attempts: 1, timeoutMs });
  try {
    const answer = await api.send('GET', path, undefined, (body) => signNodeRequest({ credential: { credentialId: identity.credentialId, key: credential }, method: 'GET', path, body, now: new Date(), nonce: randomBytes(16) }));
    const body = typeof answer.body === 'object' && answer.body !== null ? (answer.body as Record<string, unknown>) : {};
    return {
      url,
      ...(typeof body.state === 'string' ? { state: serverText(body.state, MAX_SERVER_CODE) } : {}),
      ...(typeof body.reattest === 'boolean' ? { reattest: body.reattest } : {}),
    };
  } catch (error) {
    if (error instanceof NodeApiRefusal && error.status === 404) {
      return { url, unanswered: 'the server does not answer GET /node/v1/self (an older control plane)' };
    }
    if (error instanceof NodeApiRefusal) {
      // The credential is checked before anything else: unknown means it was ended, and the agent
      // holds the latest one it was given, so revoked (or replaced by another enrollment of this EK).
      return { url, refused: { code: error.code, message: error.serverMessage, revoked: error.code === 'node.unknown-credential' } };
    }
    if (error instanceof Error) {
      return { url, unanswered: error.message };
    }
    throw error;
  }
}

function statusText(report: StatusReport): string {
  if (report.identity === undefined) {
    return `not enrolled (state dir ${report.stateDir})${report.problem === undefined ? '' : `\n  ${report.problem}`}\n`;
  }
  const { identity, lastAttestation } = report;
  const lines = [
    `enrolled: machine ${identity.machineId} with ${identity.serverUrl}`,
    `  state dir: ${report.stateDir}`,
    `  enrolled at: ${identity.enrolledAt}`,
    `  node credential: ${identity.credentialId} (registration ${identity.registrationId}), ${report.credentialOpens === true ? 'opens in this TPM' : 'DOES NOT open in this TPM'}`,
    `  ekPubHash: ${identity.ekPubHash}`,
    // last-attestation.json holds what a server said: shown escaped, whatever an older agent stored.
    `  last attestation: ${lastAttestation === undefined ? 'unknown' : `${serverText(lastAttestation.outcome, MAX_SERVER_CODE)} at ${serverText(lastAttestation.at, MAX_SERVER_CODE)}${lastAttestation.code === undefined ? '' : ` (${serverText(lastAttestation.code, MAX_SERVER_CODE)}: ${serverText(lastAttestation.message ?? '', MAX_SERVER_LINE)})`}`}`,
    ...(report.metrics === undefined ? [] : metricsLines(report.metrics)),
    ...(report.server === undefined ? [] : [`  server: ${serverLine(report.server)}`]),
    ...(report.problem === undefined ? [] : [`  problem: ${report.problem}`]),
  ];
  return `${lines.join('\n')}\n`;
}

/** The counters of agent-metrics.json, a line each; the file is the agent's own but shown escaped like any stored text. */
function metricsLines(metrics: AgentMetrics): string[] {
  const counts = (record: Readonly<Record<string, number>>) => Object.entries(record).map(([k, n]) => `${n} ${k}`).join(', ');
  const text = (value: string) => serverText(value, MAX_SERVER_LINE);
  const last = metrics.lastDelivery;
  return [
    `  counted since: ${text(metrics.since)}`,
    `  attestations: ${counts(metrics.attestations)}${metrics.lastAttestedAt === undefined ? '' : `; last attested ${text(metrics.lastAttestedAt)}`}`,
    `  deliveries: ${counts(metrics.deliveries)}${last === undefined ? '' : `; last ${text(last.outcome)} at ${text(last.at)}${last.secret === undefined ? '' : ` (${text(last.secret)}${last.code === undefined ? '' : `: ${text(last.code)}`})`}`}`,
    `  TPM errors: ${counts(metrics.tpmErrors)}${metrics.lastTpmError === undefined ? '' : `; last at ${text(metrics.lastTpmError.at)}: ${text(metrics.lastTpmError.message)}`}`,
  ];
}

function serverLine(server: ServerView): string {
  if (server.refused !== undefined) {
    return `${server.refused.revoked ? 'REVOKED' : 'REFUSED'}: ${server.refused.code}: ${server.refused.message}`;
  }
  if (server.unanswered !== undefined) {
    return `not answered: ${server.unanswered}`;
  }
  return `machine ${server.state ?? 'in an unknown state'}${server.reattest === true ? ', re-attestation requested' : ''}`;
}
