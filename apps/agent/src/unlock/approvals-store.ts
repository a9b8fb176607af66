import type { ApprovalsResponse } from '@rackseal/node-api-contracts';
import { parseEnvelope } from '@rackseal/wrapping';
import { serialized } from '../install/disk-install';
import type { LuksDevice } from '../install/cryptsetup';
import { MAX_TOKEN_APPROVALS_BYTES, readLuksMetadata, writeRacksealToken } from '../install/luks-token';
import { StateNotEnrolledError } from '../state/state-errors';
import { readStateFile, writeStateFile } from '../state/state-files';

/**
 * Where boot unlock finds the group's signed PCR approvals with no network (docs/decisions.md "Boot
 * unlock"). Approvals are public values (signatures over PCR policy digests), so they are kept in
 * clear, in two places, both written by whoever fetched them (`rackseal-agent unlock --online`, and
 * the daemon after each attestation through recordApprovals):
 *
 * - `approvals.json` in the state dir: the newest answer per (group, epoch), at most MAX_CACHED,
 *   replaced atomically (state-files.ts);
 * - the disk's own `rackseal` LUKS2 token, beside the envelope (luks-token.ts `approvals`), when the
 *   answer is of the envelope's group and epoch: the header is what the initramfs reads at boot, and
 *   it stays current without rebuilding the initramfs (whose copy of the state dir is a snapshot).
 */
export const APPROVALS_CACHE_FILE = 'approvals.json';
const CACHE_FORMAT = 1;
/** Answers of this many (group, epoch) pairs are kept: an envelope not yet re-wrapped after an epoch bump still opens. */
export const MAX_CACHED = 8;
const MAX_CACHE_BYTES = 256 * 1024;

export interface CachedApprovals {
  readonly fetchedAt: string;
  readonly approvals: ApprovalsResponse;
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length <= 8192;

/**
 * `value` as an ApprovalsResponse when it has that shape (field types only: the unwrap checks the
 * policyRef, the signing key's Name and every signature against the envelope and in the TPM).
 */
export function approvalsShape(value: unknown): ApprovalsResponse | undefined {
  if (typeof value !== 'object' || value === null) {
    return undefined;
  }
  const o = value as Record<string, unknown>;
  const ok =
    isString(o.group) &&
    Number.isSafeInteger(o.epoch) &&
    (o.epoch as number) >= 1 &&
    isString(o.policyRef) &&
    isString(o.bank) &&
    Array.isArray(o.pcrs) &&
    o.pcrs.every((p) => Number.isSafeInteger(p)) &&
    isString(o.signingKeyPublic) &&
    isString(o.signingKeyName) &&
    Array.isArray(o.approvals) &&
    o.approvals.length <= 256 &&
    o.approvals.every((a: unknown) => typeof a === 'object' && a !== null && isString((a as Record<string, unknown>).label) && isString((a as Record<string, unknown>).approvedPolicy) && isString((a as Record<string, unknown>).signature));
  return ok ? (value as ApprovalsResponse) : undefined;
}

/**
 * The state dir's cached approvals, newest epoch first. A missing file is none; an unreadable or
 * malformed one is also none, with `problem` saying why (boot unlock goes on with the token's).
 */
export async function loadCachedApprovals(stateDir: string): Promise<{ entries: CachedApprovals[]; problem?: string }> {
  let bytes: Buffer;
  try {
    bytes = await readStateFile(stateDir, APPROVALS_CACHE_FILE, MAX_CACHE_BYTES);
  } catch (error) {
    return error instanceof StateNotEnrolledError ? { entries: [] } : { entries: [], problem: (error as Error).message };
  }
  try {
    const document = JSON.parse(bytes.toString('utf8')) as { format?: unknown; entries?: unknown };
    if (document.format !== CACHE_FORMAT || !Array.isArray(document.entries)) {
      throw new Error('not format 1');
    }
    const entries = document.entries.flatMap((e: unknown) => {
      const entry = e as { fetchedAt?: unknown; approvals?: unknown } | null;
      const approvals = approvalsShape(entry?.approvals);
      return approvals !== undefined && typeof entry?.fetchedAt === 'string' ? [{ fetchedAt: entry.fetchedAt, approvals }] : [];
    });
    return { entries };
  } catch {
    return { entries: [], problem: `${stateDir}/${APPROVALS_CACHE_FILE} is not a rackseal approvals cache` };
  }
}

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
  const outcomes: TokenApprovalsOutcome[] = [];
  for (const luks of options.devices ?? []) {
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
 * The approvals that can open an envelope of (group, epoch): every candidate of that group and
 * epoch signed by the same key, merged. Within one epoch approvals are only ever added (a change
 * that drops a state moves the group to the next epoch: docs/decisions.md "PCR approvals"), so the
 * union of what the token, the cache and the server said is as valid as the newest of them, and
 * survives one of them being stale. Undefined when none matches.
 */
export function approvalsForEnvelope(candidates: readonly ApprovalsResponse[], group: string, epoch: number): ApprovalsResponse | undefined {
  const matching = candidates.filter((c) => c.group === group && c.epoch === epoch);
  const first = matching[0];
  if (first === undefined) {
    return undefined;
  }
  const seen = new Set<string>();
  const approvals = matching
    .filter((c) => c.signingKeyName === first.signingKeyName && c.policyRef === first.policyRef)
    .flatMap((c) => c.approvals)
    .filter((a) => !seen.has(a.approvedPolicy) && seen.add(a.approvedPolicy) !== undefined);
  return { ...first, approvals };
}
