import type { ApprovalsResponse } from '@rackseal/node-api-contracts/approvals';
import { StateNotEnrolledError } from '../state/state-errors';
import { readStateFile } from '../state/state-files';

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
export const CACHE_FORMAT = 1;
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
