import type { SecretBytes } from '@rackseal/config/secret-bytes';
import type { ApprovalsResponse } from '@rackseal/node-api-contracts';
import type { DiskTarget } from './agent-config';
import { CRYPTSETUP_NO_KEY, cryptsetupOk, type LuksDevice, runCryptsetup } from './cryptsetup';
import { type EnvelopeRefresh, refreshDiskEnvelope } from './disk-envelope-refresh';
import { InstallError } from './install-errors';
import { LUKS2_SLOTS, type LuksMetadata, MAX_TOKEN_ENVELOPE_BYTES, type RacksealToken, readLuksMetadata, writeRacksealToken } from './luks-token';

/** A disk key as delivered: its generation, and the PCR-sealed envelope it came in (kept in the token for boot unlock). */
export interface DiskKeyDelivery {
  readonly name: string;
  readonly key: SecretBytes;
  readonly generation: number;
  readonly envelope?: Uint8Array;
  /** The approvals the envelope was just opened with: stored beside it when it replaces an older epoch's. */
  readonly approvals?: ApprovalsResponse;
}

export interface DiskInstallDependencies {
  /**
   * The key of the disk's current rackseal keyslot, which authorises adding the next one: the
   * delivery loop unwraps the token's envelope in the TPM, as boot unlock does. Undefined (or
   * absent): not available, and the config's enrollKeyFile is tried.
   */
  readonly currentDiskKey?: (token: RacksealToken, device: string) => Promise<SecretBytes | undefined>;
  /** The cryptsetup program (default: `cryptsetup` through PATH). */
  readonly cryptsetup?: string;
}

export interface DiskOutcome {
  /**
   * False when the header was left as it was: the disk already held this generation or a newer
   * one, in an envelope of the same or a newer approval epoch.
   */
  readonly changed: boolean;
  /** Present when the token's envelope was replaced by the same generation's at a newer epoch (a withdrawal's re-wrap). */
  readonly envelope?: EnvelopeRefresh;
  /** The keyslot of the disk's current rackseal key. */
  readonly keyslot?: number;
  /** The disk's generation afterwards. */
  readonly generation?: number;
  /** Keyslots killed: the previous key's, and any a crashed install left behind. */
  readonly retired: readonly number[];
  /** True when the key was already in a keyslot (an install that crashed after luksAddKey). */
  readonly recovered?: boolean;
}

/**
 * The added keyslots' KDF: the keys are 32 or 64 random bytes, so a slow, memory-hard PBKDF adds
 * nothing against guessing and only delays every unlock at boot; PBKDF2-SHA512 with 1000 iterations
 * is what systemd-cryptenroll uses for its TPM2 keys for the same reason.
 */
export const KEYSLOT_KDF = ['--pbkdf', 'pbkdf2', '--pbkdf-force-iterations', '1000', '--hash', 'sha512'];

/**
 * One install per device at a time: the steps below are a sequence of cryptsetup calls, each atomic
 * alone. Exported for the other writer of the token, the approvals refresh (unlock/approvals-store.ts).
 */
const busy = new Map<string, Promise<unknown>>();

export function serialized<T>(device: string, work: () => Promise<T>): Promise<T> {
  const previous = busy.get(device) ?? Promise.resolve();
  const next = previous.then(work, work);
  const settled = next.catch(() => undefined);
  busy.set(device, settled);
  void settled.then(() => {
    if (busy.get(device) === settled) {
      busy.delete(device);
    }
  });
  return next;
}

export function luksDeviceOf(target: DiskTarget, cryptsetup?: string): LuksDevice {
  return { device: target.device, ...(target.header === undefined ? {} : { header: target.header }), ...(cryptsetup === undefined ? {} : { cryptsetup }) };
}

/**
 * Puts a delivered disk key into a LUKS2 keyslot of the configured device (docs/decisions.md "Agent
 * installs"): an older generation than the disk's rackseal token holds changes nothing; the same
 * generation changes nothing either, unless it comes wrapped at a newer approval epoch, whose
 * envelope then replaces the token's (disk-envelope-refresh.ts; the keyslots stay); otherwise the new key is added to a free keyslot authorised by the current rackseal key
 * (or, on the first install, the enrollment key file), proven to open that slot, recorded in the
 * token with its generation and envelope, and only then is the old rackseal keyslot killed —
 * authorised by the new key. Every step leaves the token saying what to do after a crash.
 */
export function installDiskKey(delivery: DiskKeyDelivery, target: DiskTarget, deps: DiskInstallDependencies = {}): Promise<DiskOutcome> {
  const luks = luksDeviceOf(target, deps.cryptsetup);
  if (target.keySize !== undefined && delivery.key.length !== target.keySize) {
    return Promise.reject(new InstallError('disk.key-size', `${delivery.name}: the delivered disk key is ${delivery.key.length} bytes; ${target.device} is configured for ${target.keySize}`));
  }
  if (delivery.envelope !== undefined && delivery.envelope.length > MAX_TOKEN_ENVELOPE_BYTES) {
    return Promise.reject(new InstallError('disk.envelope-too-large', `${delivery.name}: the envelope (${delivery.envelope.length} bytes) is larger than the ${MAX_TOKEN_ENVELOPE_BYTES} bytes a rackseal token holds`));
  }
  return serialized(luks.header ?? luks.device, async () => {
    const meta = await readLuksMetadata(luks);
    checkSecret(meta, delivery, luks);
    const token = meta.token;
    if (token?.generation !== undefined && token.generation >= delivery.generation) {
      // Nothing to add. A crash after the last token update may have left the old slot alive:
      // finish that with this key, which is the current one when the generation is the same.
      if (token.generation !== delivery.generation) {
        return { changed: false, keyslot: token.keyslot!, generation: token.generation, retired: [] };
      }
      const retired = await retire(luks, meta, token, delivery.key);
      // The same key sealed again at a newer approval epoch (a withdrawn state): the token takes the new envelope.
      const refreshed = await refreshDiskEnvelope(luks, { ...token, retiring: [] }, delivery, (key, slot) => opensSlot(luks, key, slot));
      return { changed: refreshed !== undefined, keyslot: token.keyslot!, generation: token.generation, retired, ...(refreshed === undefined ? {} : { envelope: refreshed }) };
    }
    const added = await addDiskKey(luks, meta, delivery, target, deps);
    const outcome = await commitDiskKey(luks, delivery, added.keyslot);
    return { ...outcome, ...(added.recovered ? { recovered: true } : {}) };
  });
}

function checkSecret(meta: LuksMetadata, delivery: DiskKeyDelivery, luks: LuksDevice): void {
  if (meta.token !== undefined && meta.token.secret !== delivery.name) {
    throw new InstallError('disk.other-secret', `${luks.device} holds the key of rackseal secret ${meta.token.secret}, not ${delivery.name}: one disk secret per device`);
  }
}

/**
 * Step 1: the new key in a keyslot. Records `pending` (slot, generation) in the token first, then
 * runs luksAddKey into that slot. When the token already names a pending slot of this generation
 * that the key opens (a crash after luksAddKey), that slot is taken as it is; a pending slot of
 * another generation, or one the key does not open, is marked for retirement.
 */
export async function addDiskKey(luks: LuksDevice, meta: LuksMetadata, delivery: DiskKeyDelivery, target: DiskTarget, deps: DiskInstallDependencies): Promise<{ keyslot: number; recovered: boolean }> {
  const token = meta.token;
  const retiring = new Set(token?.retiring ?? []);
  const pending = token?.pending;
  if (pending !== undefined && meta.keyslots.has(pending.keyslot) && pending.keyslot !== token!.keyslot) {
    if (pending.generation === delivery.generation && (await opensSlot(luks, delivery.key, pending.keyslot))) {
      return { keyslot: pending.keyslot, recovered: true };
    }
    retiring.add(pending.keyslot);
  }
  const keyslot = lowestFree(meta.keyslots, LUKS2_SLOTS);
  if (keyslot === undefined) {
    throw new InstallError('disk.no-free-keyslot', `${luks.device} has no free keyslot (LUKS2 has ${LUKS2_SLOTS})`);
  }
  const tokenId = token?.tokenId ?? lowestFree(meta.tokenIds, LUKS2_SLOTS);
  if (tokenId === undefined) {
    throw new InstallError('disk.token-conflict', `${luks.device} has no free token id`);
  }
  await writeRacksealToken(
    luks,
    {
      secret: delivery.name,
      ...(token?.keyslot === undefined ? {} : { keyslot: token.keyslot, generation: token.generation! }),
      ...(token?.envelope === undefined ? {} : { envelope: token.envelope }),
      ...(token?.approvals === undefined ? {} : { approvals: token.approvals }),
      pending: { keyslot, generation: delivery.generation },
      retiring: [...retiring],
    },
    tokenId,
    token !== undefined,
  );
  const newKey = ['--new-keyfile=-', `--new-keyfile-size=${delivery.key.length}`, `--new-key-slot=${keyslot}`];
  const current = token?.keyslot === undefined ? undefined : await deps.currentDiskKey?.(token, luks.device);
  if (current !== undefined) {
    const result = await runCryptsetup(luks, ['luksAddKey', '--batch-mode', ...KEYSLOT_KDF, '--key-file=-', `--keyfile-size=${current.length}`, ...newKey], [current, delivery.key]);
    if (result.exitCode === 0) {
      return { keyslot, recovered: false };
    }
    if (result.exitCode !== CRYPTSETUP_NO_KEY) {
      throw new InstallError('disk.cryptsetup', `cryptsetup luksAddKey ${luks.device} failed (exit ${result.exitCode}): ${result.lastError}`);
    }
  }
  if (target.enrollKeyFile !== undefined) {
    // The path is in argv; the file's content is read by cryptsetup itself.
    const result = await runCryptsetup(luks, ['luksAddKey', '--batch-mode', ...KEYSLOT_KDF, `--key-file=${target.enrollKeyFile}`, ...newKey], [delivery.key]);
    if (result.exitCode === 0) {
      return { keyslot, recovered: false };
    }
    if (result.exitCode !== CRYPTSETUP_NO_KEY) {
      throw new InstallError('disk.cryptsetup', `cryptsetup luksAddKey ${luks.device} with ${target.enrollKeyFile} failed (exit ${result.exitCode}): ${result.lastError}`);
    }
  }
  // Nothing was added: the token goes back to what it was, so a refused install leaves the header as it found it.
  if (token === undefined) {
    await cryptsetupOk(luks, ['token', 'remove', '--token-id', String(tokenId)]);
  } else {
    const { tokenId: _id, ...previous } = token;
    await writeRacksealToken(luks, previous, tokenId, true);
  }
  throw new InstallError(
    'disk.no-authorizing-key',
    `${delivery.name}: no key opens ${luks.device} to add generation ${delivery.generation}: ${current === undefined ? 'the current rackseal key is not available' : 'the current rackseal key does not open it'}${target.enrollKeyFile === undefined ? ' and no enrollKeyFile is configured' : ` and ${target.enrollKeyFile} does not open it`}`,
  );
}

/**
 * Step 2: proves the new key opens its slot, makes the token name it (generation, envelope) with the
 * previous rackseal slot to retire, then kills the retiring slots, authorised by the new key.
 */
export async function commitDiskKey(luks: LuksDevice, delivery: DiskKeyDelivery, keyslot: number): Promise<DiskOutcome> {
  if (!(await opensSlot(luks, delivery.key, keyslot))) {
    throw new InstallError('disk.cryptsetup', `${delivery.name}: the new key does not open keyslot ${keyslot} of ${luks.device} it was added to; nothing was retired`);
  }
  const meta = await readLuksMetadata(luks);
  const token = meta.token;
  if (token === undefined) {
    throw new InstallError('disk.token-conflict', `${luks.device}: the rackseal token written before luksAddKey is gone`);
  }
  const retiring = [...new Set([...token.retiring, ...(token.keyslot === undefined ? [] : [token.keyslot])])].filter((s) => s !== keyslot && meta.keyslots.has(s));
  const next: RacksealToken = {
    tokenId: token.tokenId,
    secret: delivery.name,
    keyslot,
    generation: delivery.generation,
    ...(delivery.envelope === undefined ? {} : { envelope: Buffer.from(delivery.envelope) }),
    // Approvals are of the group, not of one envelope: kept for the next one (unlock checks the epoch).
    ...(delivery.envelope === undefined || token.approvals === undefined ? {} : { approvals: token.approvals }),
    retiring,
  };
  await writeRacksealToken(luks, next, token.tokenId, true);
  const retired = await retire(luks, { ...meta, token: next }, next, delivery.key);
  return { changed: true, keyslot, generation: delivery.generation, retired };
}

/** Kills the token's retiring slots that still exist, authorised by `key` (the current one), then clears the list. */
async function retire(luks: LuksDevice, meta: LuksMetadata, token: RacksealToken, key: SecretBytes): Promise<number[]> {
  if (token.retiring.length === 0) {
    return [];
  }
  const killed: number[] = [];
  for (const slot of token.retiring) {
    if (slot === token.keyslot || !meta.keyslots.has(slot)) {
      continue;
    }
    const result = await runCryptsetup(luks, ['luksKillSlot', '--batch-mode', '--key-file=-'], [key], [String(slot)]);
    if (result.exitCode !== 0) {
      throw new InstallError('disk.cryptsetup', `cryptsetup luksKillSlot ${luks.device} ${slot} failed (exit ${result.exitCode}): ${result.lastError}`);
    }
    killed.push(slot);
  }
  const { tokenId, ...rest } = token;
  await writeRacksealToken(luks, { ...rest, retiring: [] }, tokenId, true);
  return killed;
}

/** Whether `key` opens keyslot `slot` (cryptsetup open --test-passphrase: nothing is activated). */
export async function opensSlot(luks: LuksDevice, key: SecretBytes, slot: number): Promise<boolean> {
  const result = await runCryptsetup(luks, ['open', '--test-passphrase', `--key-slot=${slot}`, '--key-file=-'], [key]);
  if (result.exitCode === 0 || result.exitCode === CRYPTSETUP_NO_KEY) {
    return result.exitCode === 0;
  }
  throw new InstallError('disk.cryptsetup', `cryptsetup open --test-passphrase ${luks.device} failed (exit ${result.exitCode}): ${result.lastError}`);
}

function lowestFree(used: ReadonlySet<number>, limit: number): number | undefined {
  for (let i = 0; i < limit; i++) {
    if (!used.has(i)) {
      return i;
    }
  }
  return undefined;
}
