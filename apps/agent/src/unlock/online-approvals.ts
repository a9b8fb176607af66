import { CliError } from '@rackseal/command-line/cli-error';
import type { ApprovalsResponse } from '@rackseal/node-api-contracts';
import { DEFAULT_EVENT_LOG, type UnlockOptions } from '../commands/tpm.command';
import { attestAndStore, checkServerUrl, exchangeCliError, NODE_CREDENTIAL_SECRET, openStateDir, readEventLog } from '../enrollment/attest-and-store';
import { NodeApiClient } from '../node-api/node-api-client';
import { withTpmDevice } from '../tpm-device';
import { recordApprovals } from './approvals-store';

/**
 * `--online`: a fresh attestation with the identity's EK (what `run` does, attest-and-store.ts),
 * then GET /node/v1/approvals signed with the node credential it just stored, kept in the state
 * dir's cache for the next offline boot. Strict: a server that refuses (revoked, quarantined, a
 * boot state its policy does not allow) or cannot be reached prints no key — that is what an
 * operator asks for with --online; without it the unlock is offline.
 */
export async function onlineApprovals(options: UnlockOptions, timeoutMs: number): Promise<ApprovalsResponse> {
  const state = await openStateDir(options.stateDir, false);
  try {
    const identity = await state.loadIdentity();
    const serverUrl = checkServerUrl(options.server ?? identity.serverUrl);
    const eventLog = await readEventLog(DEFAULT_EVENT_LOG, true);
    const outcome = await attestAndStore({ command: 'unlock', serverUrl, tpm: options.tpm, ek: { ekPubHash: identity.ekPubHash }, ...(eventLog.bytes === undefined ? {} : { eventLog: eventLog.bytes }), ...(options.imaList === undefined ? {} : { imaList: options.imaList }), state, previous: identity, timeoutMs, attempts: 2 });
    const key = await withTpmDevice(options.tpm, (client) => state.loadSealedSecret(client, NODE_CREDENTIAL_SECRET));
    const approvals = await new NodeApiClient({ serverUrl, timeoutMs, attempts: 2 }).approvals({ credentialId: outcome.identity.credentialId, key });
    await recordApprovals(state.path, approvals);
    return approvals;
  } catch (error) {
    const failure = exchangeCliError('unlock', error);
    throw failure instanceof CliError ? failure : CliError.usage(`unlock: ${(error as Error).message}`);
  }
}
