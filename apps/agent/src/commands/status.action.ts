import { CliError, EXIT } from '@rackseal/command-line';
import { NODE_CREDENTIAL_SECRET, openStateDir } from '../enrollment/attest-and-store';
import { type LastAttestation, loadLastAttestation } from '../state/last-attestation';
import type { NodeIdentity } from '../state/node-identity';
import { StateDirError } from '../state/state-errors';
import { withTpmDevice } from '../tpm-device';
import type { StatusOptions } from './tpm.command';

interface StatusReport {
  readonly enrolled: boolean;
  readonly stateDir: string;
  readonly identity?: NodeIdentity;
  readonly lastAttestation?: LastAttestation;
  /** Whether this TPM unseals the node credential; undefined when there is no identity to check. */
  readonly credentialOpens?: boolean;
  readonly problem?: string;
}

/**
 * Runs `rackseal-agent status` (see statusCommand): identity.json and last-attestation.json read,
 * then the sealed credential unsealed (and dropped) to show it opens in this TPM. No server.
 */
export async function runStatus(options: StatusOptions): Promise<void> {
  const report = await statusReport(options);
  process.stdout.write(options.json === true ? `${JSON.stringify(report)}\n` : statusText(report));
  if (!report.enrolled || report.credentialOpens !== true) {
    // The report is the message; stderr names the cause in one line, as every refusal does.
    throw CliError.invalid(`status: ${report.problem ?? 'not enrolled'}`);
  }
}

async function statusReport(options: StatusOptions): Promise<StatusReport> {
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
  const base = { enrolled: true, stateDir: state.path, identity, ...(lastAttestation === undefined ? {} : { lastAttestation }) };
  try {
    await withTpmDevice(options.tpm, async (client) => {
      await state.loadSealedSecret(client, NODE_CREDENTIAL_SECRET);
    });
    return { ...base, credentialOpens: true };
  } catch (error) {
    if (error instanceof StateDirError) {
      return { ...base, credentialOpens: false, problem: `the node credential does not open in this TPM: ${error.message}` };
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
    `  last attestation: ${lastAttestation === undefined ? 'unknown' : `${lastAttestation.outcome} at ${lastAttestation.at}${lastAttestation.code === undefined ? '' : ` (${lastAttestation.code}: ${lastAttestation.message ?? ''})`}`}`,
    ...(report.problem === undefined ? [] : [`  problem: ${report.problem}`]),
  ];
  return `${lines.join('\n')}\n`;
}
