import { CliError } from '@rackseal/command-line';
import { attestAndStore, checkEkKind, checkServerUrl, exchangeCliError, openStateDir, readEventLog } from '../enrollment/attest-and-store';
import type { KeyCertificationOutcome } from '../enrollment/certify-key';
import { saveLastAttestation } from '../state/last-attestation';
import { parseTimeout } from './duration';
import { DEFAULT_EVENT_LOG, type EnrollOptions } from './tpm.command';

/** The certified key's line of the output: a failed certification leaves the machine enrolled, said on stdout. */
function keyLine(key: KeyCertificationOutcome): string {
  switch (key.outcome) {
    case 'certified':
    case 'kept':
      return `  certified key ${key.key.name} (${key.key.algorithm})${key.outcome === 'kept' ? ', already on record' : ''}`;
    case 'unsupported':
      return '  certified key: the server does not certify keys';
    case 'failed':
      return `  certified key: not certified (${key.code === undefined ? '' : `${key.code}: `}${key.message}); the next attestation tries again`;
  }
}

/** Runs `rackseal-agent enroll` (see enrollCommand). */
export async function runEnroll(options: EnrollOptions): Promise<void> {
  // Arguments and the state dir are checked before the TPM or the server is touched.
  if (options.server === undefined) {
    throw CliError.usage("enroll: no control plane: give --server <url>, or server: in the config file (--config)");
  }
  const serverUrl = checkServerUrl(options.server);
  const ek = checkEkKind(options.ek);
  const timeoutMs = parseTimeout(options.timeout);
  const eventLog = await readEventLog(options.eventLog, options.eventLog === DEFAULT_EVENT_LOG);
  const state = await openStateDir(options.stateDir, true);
  if (eventLog.note !== undefined) {
    process.stderr.write(`rackseal-agent: enroll: ${eventLog.note}\n`);
  }
  let outcome;
  try {
    outcome = await attestAndStore({
      command: 'enroll',
      serverUrl,
      tpm: options.tpm,
      ek: { kind: ek },
      ...(eventLog.bytes === undefined ? {} : { eventLog: eventLog.bytes }),
      imaList: options.imaList,
      state,
      timeoutMs,
      onRetry: ({ attempt, delayMs, reason }) => process.stderr.write(`rackseal-agent: enroll: ${serverUrl}: ${reason}; retrying in ${(delayMs / 1000).toFixed(1)} s (attempt ${attempt + 1})\n`),
    });
  } catch (error) {
    throw exchangeCliError('enroll', error);
  }
  const { result, identity, key } = outcome;
  const policy = result.response.policy;
  await saveLastAttestation(state.path, { at: result.response.attestedAt, outcome: 'attested', state: result.response.state, lines: policy.summary });
  if (options.json === true) {
    process.stdout.write(
      `${JSON.stringify({ machineId: identity.machineId, state: result.response.state, credentialId: identity.credentialId, attestedAt: result.response.attestedAt, policy, key, stateDir: state.path })}\n`,
    );
    return;
  }
  const lines = [
    `enrolled machine ${identity.machineId} with ${serverUrl}: ${result.response.state}`,
    `  policy: ${policy.decision}${policy.matchedSet === undefined ? '' : ` (allowed set "${policy.matchedSet}")`}`,
    ...policy.summary.map((line) => `    ${line}`),
    `  node credential ${identity.credentialId}, sealed by this TPM in ${state.path}`,
    keyLine(key),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
