import type { ApprovalsResponse } from '@rackseal/node-api-contracts';
import { parseEnvelope } from '@rackseal/wrapping';
import { serialized } from '../install/disk-install';
import type { LuksDevice } from '../install/cryptsetup';
import { MAX_TOKEN_APPROVALS_BYTES, readLuksMetadata, writeRacksealToken } from '../install/luks-token';
import { writeStateFile } from '../state/state-files';
import { APPROVALS_CACHE_FILE, approvalsShape, CACHE_FORMAT, loadCachedApprovals, MAX_CACHED } from './approvals-cache';

/**
 * The writing side of the offline approvals (approvals-cache.ts says where they are kept and how
 * boot unlock reads them): the daemon and `unlock --online` record what the server answered. Apart
 * from the reading side because it needs the installs' code (the per-device lock, token writes),
 * which an offline unlock at boot does not load.
 */

/** What recordApprovals did with each device's token. */
export interface TokenApprovalsOutcome {
  readonly device: string;
  /** updated; unchanged (already held); skipped (no token, another group/epoch, too large); failed. */
  readonly outcome: 'updated' | 'unchanged' | 'skipped' | 'failed';
  readonly reason?: string;
}

/**
 * Records a fresh GET /node/v1/approvals answer for offline boot unlock: in the state dir's cache
 * (the newest per (group, epoch), newest epochs kept), and in the rackseal token of each of
 * `devices` whose envelope is of the same group and epoch. The daemon calls it after each
 * attestation with the config's disk devices; a device's failure is reported, never thrown, so one
 * bad disk does not keep the others or the cache stale. Each token write is serialized with the
 * installs of that device.
 */
export async function recordApprovals(stateDir: string, approvals: ApprovalsResponse, options: { devices?: readonly LuksDevice[]; now?: Date } = {}): Promise<TokenApprovalsOutcome[]> {
  if (approvalsShape(approvals) === undefined) {
    throw new TypeError('recordApprovals: not an ApprovalsResponse');
  }
  const { entries } = await loadCachedApprovals(stateDir);
  const kept = entries.filter((e) => e.approvals.group !== approvals.group || e.approvals.epoch !== approvals.epoch);
  const next = [{ fetchedAt: (options.now ?? new Date()).toISOString(), approvals }, ...kept].sort((a, b) => b.approvals.epoch - a.approvals.epoch).slice(0, MAX_CACHED);
  await writeStateFile(stateDir, APPROVALS_CACHE_FILE, Buffer.from(`${JSON.stringify({ format: CACHE_FORMAT, entries: next })}\n`, 'utf8'));
  return storeApprovalsInTokens(approvals, options.devices ?? []);
}

/**
 * The tokens' half of recordApprovals, alone: for approvals already in the cache, such as those a
 * disk delivery was just unwrapped with — its token is written by the install, after the fetch
 * that recorded them found no token to put them in.
 */
export async function storeApprovalsInTokens(approvals: ApprovalsResponse, devices: readonly LuksDevice[]): Promise<TokenApprovalsOutcome[]> {
  const outcomes: TokenApprovalsOutcome[] = [];
  for (const luks of devices) {
    outcomes.push(await storeInToken(luks, approvals).catch((error: unknown) => ({ device: luks.device, outcome: 'failed' as const, reason: (error as Error).message })));
  }
  return outcomes;
}

function storeInToken(luks: LuksDevice, approvals: ApprovalsResponse): Promise<TokenApprovalsOutcome> {
  const skipped = (reason: string): TokenApprovalsOutcome => ({ device: luks.device, outcome: 'skipped', reason });
  return serialized(luks.header ?? luks.device, async () => {
    const token = (await readLuksMetadata(luks)).token;
    if (token?.envelope === undefined) {
      return skipped('no rackseal token with an envelope');
    }
    const transport = parseEnvelope(token.envelope).transport;
    if (transport.binding !== 'pcr-sealed' || transport.group !== approvals.group || transport.epoch !== approvals.epoch) {
      return skipped('the envelope is not of these approvals\' group and epoch');
    }
    const json = JSON.stringify(approvals);
    if (json.length > MAX_TOKEN_APPROVALS_BYTES) {
      return skipped(`the approvals (${json.length} bytes) are larger than the ${MAX_TOKEN_APPROVALS_BYTES} bytes a token holds; the state dir's cache has them`);
    }
    if (token.approvals !== undefined && JSON.stringify(token.approvals) === json) {
      return { device: luks.device, outcome: 'unchanged' };
    }
    const { tokenId, ...rest } = token;
    await writeRacksealToken(luks, { ...rest, approvals: JSON.parse(json) as Record<string, unknown> }, tokenId, true);
    return { device: luks.device, outcome: 'updated' };
  });
}

/**
 * After a disk's token took an envelope of `group` at `epoch` (a withdrawal's re-wrap,
 * install/disk-envelope-refresh.ts): the state dir's cached approvals of that group at older epochs
 * are dropped, so the cache holds no signature for a state the group withdrew — except an epoch an
 * envelope in one of `devices`' tokens still needs (another disk whose re-wrap has not come yet).
 * A device whose token cannot be read keeps every epoch. Answers the epochs dropped.
 */
export async function dropOlderEpochs(stateDir: string, group: string, epoch: number, devices: readonly LuksDevice[]): Promise<number[]> {
  const needed = new Set<number>();
  for (const luks of devices) {
    try {
      const envelope = (await readLuksMetadata(luks)).token?.envelope;
      const transport = envelope === undefined ? undefined : parseEnvelope(envelope).transport;
      if (transport?.binding === 'pcr-sealed' && transport.group === group) {
        needed.add(transport.epoch);
      }
    } catch {
      return [];
    }
  }
  const { entries, problem } = await loadCachedApprovals(stateDir);
  if (problem !== undefined) {
    return [];
  }
  const dropped = entries.filter((e) => e.approvals.group === group && e.approvals.epoch < epoch && !needed.has(e.approvals.epoch));
  if (dropped.length === 0) {
    return [];
  }
  const kept = entries.filter((e) => !dropped.includes(e));
  await writeStateFile(stateDir, APPROVALS_CACHE_FILE, Buffer.from(`${JSON.stringify({ format: CACHE_FORMAT, entries: kept })}\n`, 'utf8'));
  return dropped.map((e) => e.approvals.epoch);
}
