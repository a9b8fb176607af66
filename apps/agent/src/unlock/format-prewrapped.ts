import { open } from 'node:fs/promises';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { DeliveryPayloadError, parseDeliveryPayload, type PrewrappedDiskKey } from '@rackseal/node-api-contracts';
import { parseEnvelope } from '@rackseal/wrapping';
import { cryptsetupOk, type LuksDevice, runCryptsetup } from '../install/cryptsetup';
import { KEYSLOT_KDF, opensSlot } from '../install/disk-install';
import { MAX_TOKEN_APPROVALS_BYTES, MAX_TOKEN_ENVELOPE_BYTES, readLuksMetadata, writeRacksealToken } from '../install/luks-token';
import { withTpmDevice } from '../tpm-device';
import { unwrapEnvelope } from '../unwrap/unwrap-envelope';
import { approvalsForEnvelope, approvalsShape } from './approvals-cache';
import { UnlockError } from './unlock-errors';

/** How much of a device must read as zeros before it is taken as new: past the superblocks of every common format (btrfs's is at 64 KiB). */
export const BLANK_PROBE_BYTES = 1024 * 1024;

/** The first keyslot and token of a fresh LUKS2 header. */
const FIRST_SLOT = 0;
const FIRST_TOKEN = 0;

export type FirstBootOutcome = 'formatted' | 'token-written' | 'present';

/**
 * The first boot of a disk pre-wrapped at import (issue 14 item 6; docs/decisions.md "Pre-wrapped
 * disk keys"), offline, before the machine ever talked to the control plane: the key is unsealed in
 * this TPM from the provisioning file's envelope with its approvals (refused unless the machine is
 * in an approved boot state), the device — which must be new: no LUKS header and its first MiB all
 * zeros, so nothing is ever formatted over — is formatted LUKS2 with that key in keyslot 0, and the
 * `rackseal` token (envelope, approvals, generation) written, so every later boot unlocks from the
 * header like any rackseal disk. A crash between the format and the token is finished at the next
 * boot: a LUKS2 device without a rackseal token whose slot 0 the file's key opens gets its token.
 * A device that already has its token is left alone (`present`): the caller unlocks it as usual.
 * The key reaches cryptsetup on stdin only; it is answered in SecretBytes, never written elsewhere.
 */
export async function firstBootFromPrewrap(luks: LuksDevice, tpm: string, file: PrewrappedDiskKey): Promise<{ outcome: FirstBootOutcome; key?: SecretBytes }> {
  const isLuks = (await runCryptsetup(luks, ['isLuks', '--type', 'luks2'])).exitCode === 0;
  if (isLuks && (await readLuksMetadata(luks)).token !== undefined) {
    return { outcome: 'present' };
  }
  if (!isLuks && !(await isBlank(luks.device))) {
    throw new UnlockError('unlock.not-blank', `${luks.device} is not LUKS2 and not blank (its first MiB is not all zeros): a pre-wrapped key formats only a new disk, never one that holds something`);
  }
  const envelope = Buffer.from(file.envelope, 'base64');
  if (envelope.length > MAX_TOKEN_ENVELOPE_BYTES || Buffer.byteLength(JSON.stringify(file.approvals)) > MAX_TOKEN_APPROVALS_BYTES) {
    throw new UnlockError('unlock.bad-envelope', `${luks.device}: the pre-wrapped envelope or its approvals are larger than a LUKS2 token holds`);
  }
  const key = await unsealPrewrapped(luks.device, tpm, file, envelope);
  try {
    if (isLuks) {
      if (!(await opensSlot(luks, key, FIRST_SLOT))) {
        throw new UnlockError('unlock.not-blank', `${luks.device} is LUKS2 without a rackseal token, and the pre-wrapped key does not open its keyslot ${FIRST_SLOT}: not a disk this file formatted`);
      }
    } else {
      await cryptsetupOk(luks, ['luksFormat', '--batch-mode', '--type', 'luks2', ...KEYSLOT_KDF, `--key-slot=${FIRST_SLOT}`, '--key-file=-', `--keyfile-size=${key.length}`], [key]);
    }
    await writeRacksealToken(luks, { secret: file.secret, keyslot: FIRST_SLOT, generation: file.generation, envelope, retiring: [], approvals: file.approvals as unknown as Record<string, unknown> }, FIRST_TOKEN, false);
    return { outcome: isLuks ? 'token-written' : 'formatted', key };
  } catch (error) {
    key.reveal().fill(0);
    throw error;
  }
}

/** The file's envelope opened in the TPM with the file's approvals: the disk key of the file's generation. */
async function unsealPrewrapped(device: string, tpm: string, file: PrewrappedDiskKey, envelope: Buffer): Promise<SecretBytes> {
  const transport = parseEnvelope(envelope).transport;
  if (transport.binding !== 'pcr-sealed') {
    throw new UnlockError('unlock.bad-envelope', `${device}: the pre-wrapped envelope is ${transport.binding}; only pcr-sealed disk keys are pre-wrapped`);
  }
  const shaped = approvalsShape(file.approvals);
  const approvals = shaped === undefined ? undefined : approvalsForEnvelope([shaped], transport.group, transport.epoch);
  if (approvals === undefined) {
    throw new UnlockError('unlock.no-approvals', `${device}: the pre-wrapped file has no approvals of group ${JSON.stringify(transport.group)} at epoch ${transport.epoch}`);
  }
  const payload = await withTpmDevice(tpm, (client) => unwrapEnvelope(client, envelope, { ekPubHash: file.machine.ekPubHash }, { approvals }));
  try {
    const parsed = parseDeliveryPayload(payload, (bytes) => new SecretBytes(bytes));
    if (parsed.kind !== 'disk' || parsed.generation !== file.generation) {
      throw new UnlockError('unlock.bad-envelope', `${device}: the pre-wrapped envelope does not hold the disk key of generation ${file.generation}`);
    }
    return parsed.key;
  } catch (error) {
    if (error instanceof DeliveryPayloadError) {
      throw new UnlockError('unlock.bad-envelope', `${device}: the pre-wrapped envelope does not hold a disk key (${error.message})`);
    }
    throw error;
  } finally {
    payload.fill(0);
  }
}

async function isBlank(device: string): Promise<boolean> {
  const handle = await open(device, 'r');
  try {
    const buffer = Buffer.alloc(BLANK_PROBE_BYTES);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    return buffer.subarray(0, bytesRead).every((b) => b === 0);
  } finally {
    await handle.close();
  }
}
