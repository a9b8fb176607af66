import type { ApprovalsResponse } from '@rackseal/node-api-contracts';
import { parseEnvelope, type PcrSealedKeyTransport } from '@rackseal/wrapping';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import type { LuksDevice } from './cryptsetup';
import { InstallError } from './install-errors';
import { MAX_TOKEN_APPROVALS_BYTES, type RacksealToken, writeRacksealToken } from './luks-token';

/** The envelope a disk's token held, and the one that replaced it. */
export interface EnvelopeRefresh {
  readonly group: string;
  readonly fromEpoch: number;
  readonly toEpoch: number;
}

/**
 * A re-wrapped delivery of the generation the disk already holds (docs/decisions.md "Withdrawn
 * states"): `policy withdraw` moves the group to a new approval epoch and the workers seal the same
 * disk key again at it (a new round of the same delivery). The token's envelope is then replaced,
 * or the withdrawn state keeps unlocking the disk offline with the old epoch's approvals, which
 * stay valid for the old envelope (libs/pcr-policy approval-math.ts: policyRef binds the epoch).
 *
 * Replaced only when the delivered envelope is pcr-sealed, of the token envelope's group, at a
 * strictly newer epoch (an older one is a downgrade and is never taken; the same one changes
 * nothing), and `key` — the delivered payload, which the caller unwrapped from this very envelope in
 * the TPM under the group's current approvals — opens the token's keyslot: the new envelope is then
 * proven to give the key the disk opens with. The keyslots are not touched (same key). The token's
 * approvals become `approvals` when they are of the new epoch and fit, else none (the state dir's
 * cache has them): approvals of the old epoch open nothing the token holds any more.
 *
 * Undefined when nothing was replaced. Runs inside the device's install lock (disk-install.ts).
 */
export async function refreshDiskEnvelope(
  luks: LuksDevice,
  token: RacksealToken,
  delivery: { readonly name: string; readonly key: SecretBytes; readonly envelope?: Uint8Array; readonly approvals?: ApprovalsResponse },
  opensSlot: (key: SecretBytes, slot: number) => Promise<boolean>,
): Promise<EnvelopeRefresh | undefined> {
  if (delivery.envelope === undefined || token.envelope === undefined || token.keyslot === undefined) {
    return undefined;
  }
  const held = pcrSealed(token.envelope);
  const offered = pcrSealed(Buffer.from(delivery.envelope));
  // A group other than the token's is not a re-wrap of it (machines do not move between groups).
  if (held === undefined || offered === undefined || offered.group !== held.group || offered.epoch <= held.epoch) {
    return undefined;
  }
  if (!(await opensSlot(delivery.key, token.keyslot))) {
    throw new InstallError(
      'disk.key-mismatch',
      `${delivery.name}: the delivery re-wrapped at approval epoch ${offered.epoch} holds generation ${token.generation} but not the key of keyslot ${token.keyslot} of ${luks.device}; the token keeps its epoch-${held.epoch} envelope`,
    );
  }
  const approvals = delivery.approvals !== undefined && delivery.approvals.group === offered.group && delivery.approvals.epoch === offered.epoch ? JSON.stringify(delivery.approvals) : undefined;
  const { tokenId, approvals: _old, ...rest } = token;
  await writeRacksealToken(
    luks,
    {
      ...rest,
      envelope: Buffer.from(delivery.envelope),
      ...(approvals === undefined || approvals.length > MAX_TOKEN_APPROVALS_BYTES ? {} : { approvals: JSON.parse(approvals) as Record<string, unknown> }),
    },
    tokenId,
    true,
  );
  return { group: offered.group, fromEpoch: held.epoch, toEpoch: offered.epoch };
}

/** The envelope's pcr-sealed transport; undefined for another binding or bytes that do not parse. */
function pcrSealed(envelope: Buffer): PcrSealedKeyTransport | undefined {
  try {
    const transport = parseEnvelope(envelope).transport;
    return transport.binding === 'pcr-sealed' ? transport : undefined;
  } catch {
    return undefined;
  }
}
