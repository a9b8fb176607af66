// Single files of the libraries, not their indexes: an offline unlock at boot loads what it runs
// (docs/decisions.md "Boot unlock loads single files"; test/agent-unlock-files.test.ts lists them).
import { SecretBytes } from '@rackseal/config/secret-bytes';
import type { ApprovalsResponse } from '@rackseal/node-api-contracts/approvals';
import { DeliveryPayloadError, parseDeliveryPayload } from '@rackseal/node-api-contracts/delivery-payloads';
import { parseEnvelope, type PcrSealedKeyTransport } from '@rackseal/wrapping/envelope-format';
import type { LuksDevice } from '../install/cryptsetup';
import { InstallError } from '../install/install-errors';
import { readLuks2Json } from '../install/luks2-header';
import { luksMetadataFromJson, type RacksealToken } from '../install/luks-token-format';
import { StateDir } from '../state/state-dir';
import { StateDirError } from '../state/state-errors';
import { withTpmDevice } from '../tpm-device';
import { unwrapEnvelope } from '../unwrap/unwrap-envelope';
import { approvalsForEnvelope, approvalsShape, loadCachedApprovals } from './approvals-cache';
import { UnlockError } from './unlock-errors';

export interface UnlockInput {
  readonly luks: LuksDevice;
  /** `--tpm`: the TPM the envelope is sealed in. */
  readonly tpm: string;
  /** `--state-dir`: identity.json (which EK) and the approvals cache; may be absent (a pre-wrapped disk's first boot). */
  readonly stateDir: string;
  /** `--online`: the server's answer just fetched, tried with the offline ones. */
  readonly fresh?: ApprovalsResponse;
}

/**
 * The disk key of `luks`, offline (docs/decisions.md "Boot unlock"): the `rackseal` token of its
 * LUKS2 header, its PCR-sealed envelope opened in the TPM with the approvals of the envelope's group
 * and epoch found in the token, the state dir's cache (and `fresh`), then the delivery payload
 * inside checked to be a disk key of the token's generation. Every refusal is typed (UnlockError,
 * UnwrapRefusal, the envelope's and the TPM's errors) and the key exists only in the SecretBytes
 * returned.
 */
export async function unlockDiskKey(input: UnlockInput): Promise<SecretBytes> {
  const { token, envelope } = await readToken(input.luks);
  let transport: PcrSealedKeyTransport;
  try {
    const parsed = parseEnvelope(envelope);
    if (parsed.transport.binding !== 'pcr-sealed') {
      throw new UnlockError('unlock.bad-envelope', `${input.luks.device}: the rackseal token's envelope is ${parsed.transport.binding}; boot unlock opens pcr-sealed envelopes only`);
    }
    transport = parsed.transport;
  } catch (error) {
    throw error instanceof UnlockError ? error : new UnlockError('unlock.bad-envelope', `${input.luks.device}: the rackseal token's envelope is not one rackseal wrote: ${(error as Error).message}`);
  }
  const { ekPubHash, cached, problem } = await offlineState(input.stateDir);
  const candidates = [input.fresh, token.approvals, ...cached].flatMap((c) => {
    const shaped = approvalsShape(c);
    return shaped === undefined ? [] : [shaped];
  });
  const approvals = approvalsForEnvelope(candidates, transport.group, transport.epoch);
  if (approvals === undefined) {
    throw new UnlockError(
      'unlock.no-approvals',
      `${input.luks.device}: no approvals of group ${JSON.stringify(transport.group)} at epoch ${transport.epoch} in the rackseal token, in ${input.stateDir}${problem === undefined ? '' : ` (${problem})`}${input.fresh === undefined ? ' (run once with --online, or let the daemon attest)' : ' or from the server'}`,
    );
  }
  // Without identity.json (a disk wrapped at import, before enrollment) the envelope names the EK;
  // the TPM finds that EK or refuses, and the Import under any other fails anyway.
  const recipient = ekPubHash ?? transport.recipient.toString('hex');
  const payload = await withTpmDevice(input.tpm, (client) => unwrapEnvelope(client, envelope, { ekPubHash: recipient }, { approvals }));
  try {
    const parsed = parseDeliveryPayload(payload, (bytes) => new SecretBytes(bytes));
    if (parsed.kind !== 'disk') {
      throw new UnlockError('unlock.bad-envelope', `${input.luks.device}: the rackseal token's envelope holds a ${parsed.kind} secret, not a disk key`);
    }
    if (parsed.generation !== token.generation) {
      throw new UnlockError('unlock.bad-envelope', `${input.luks.device}: the rackseal token names generation ${token.generation ?? 'none'} but its envelope holds generation ${parsed.generation}: not printing a key that is not the keyslot's`);
    }
    return parsed.key;
  } catch (error) {
    if (error instanceof DeliveryPayloadError) {
      throw new UnlockError('unlock.bad-envelope', `${input.luks.device}: the rackseal token's envelope does not hold a disk key (${error.message})`);
    }
    throw error;
  } finally {
    payload.fill(0);
  }
}

async function readToken(luks: LuksDevice): Promise<{ token: RacksealToken; envelope: Buffer }> {
  let token: RacksealToken | undefined;
  try {
    // The header read directly when it is plainly well (luks2-header.ts); anything else, and the
    // errors' wording, is cryptsetup's, loaded only then (a child process costs boot time).
    const json = await readLuks2Json(luks.header ?? luks.device);
    token =
      json === undefined
        ? await (await import('../install/luks-token')).readRacksealToken(luks.device, { ...(luks.header === undefined ? {} : { header: luks.header }), ...(luks.cryptsetup === undefined ? {} : { cryptsetup: luks.cryptsetup }) })
        : luksMetadataFromJson(json as Parameters<typeof luksMetadataFromJson>[0], luks.device).token;
  } catch (error) {
    if (error instanceof InstallError) {
      throw new UnlockError(error.code === 'disk.token-conflict' ? 'unlock.no-token' : 'unlock.not-luks2', error.message);
    }
    throw error;
  }
  if (token === undefined) {
    throw new UnlockError('unlock.no-token', `${luks.device} has no rackseal token: no rackseal disk key was installed on it (cryptsetup luksDump shows its tokens)`);
  }
  if (token.keyslot === undefined || token.envelope === undefined) {
    throw new UnlockError('unlock.no-token', `${luks.device}: the rackseal token holds ${token.keyslot === undefined ? 'no installed key yet' : 'no envelope'} (secret ${JSON.stringify(token.secret)})`);
  }
  return { token, envelope: token.envelope };
}

/** identity.json's ekPubHash and the cached approvals, when the state dir has them; neither is required. */
async function offlineState(path: string): Promise<{ ekPubHash?: string; cached: ApprovalsResponse[]; problem?: string }> {
  let dir: StateDir;
  try {
    dir = await StateDir.open(path);
  } catch (error) {
    if (error instanceof StateDirError) {
      return { cached: [], ...(error.kind === 'not-enrolled' ? {} : { problem: error.message }) };
    }
    throw error;
  }
  const { entries, problem } = await loadCachedApprovals(dir.path);
  let ekPubHash: string | undefined;
  try {
    ekPubHash = (await dir.loadIdentity()).ekPubHash;
  } catch (error) {
    if (!(error instanceof StateDirError)) {
      throw error;
    }
  }
  return { ...(ekPubHash === undefined ? {} : { ekPubHash }), cached: entries.map((e) => e.approvals), ...(problem === undefined ? {} : { problem }) };
}
