import type { ApprovalsResponse } from '@rackseal/node-api-contracts';
import { readStateFile, writeStateFile } from './state-files';

/**
 * The group's signed PCR approvals as last fetched (GET /node/v1/approvals), in the state dir, so a
 * pcr-sealed delivery still unwraps when the approvals route is briefly unreachable. Approvals are
 * public values (signatures over PCR policy digests): kept in clear, replaced atomically
 * (writeStateFile). One answer per (group, epoch), the newest epochs first, at most MAX_CACHED: an
 * envelope not yet re-wrapped after an epoch bump names the older epoch. The layout (`approvals.json`,
 * `{format: 1, entries: [{fetchedAt, approvals}]}`) is the one boot unlock reads, so either writer
 * serves both. The unwrap checks every value it uses (policyRef, the signing key's Name, each
 * signature in the TPM), so the cache is only read for its shape.
 */
export const APPROVALS_CACHE_FILE = 'approvals.json';
const CACHE_FORMAT = 1;
const MAX_CACHED = 8;
const MAX_CACHE_BYTES = 256 * 1024;

interface CacheEntry {
  readonly fetchedAt: string;
  readonly approvals: ApprovalsResponse;
}

function isApprovals(value: unknown): value is ApprovalsResponse {
  const o = value as Partial<Record<keyof ApprovalsResponse, unknown>> | null;
  return (
    typeof o === 'object' && o !== null && typeof o.group === 'string' && Number.isSafeInteger(o.epoch) && typeof o.policyRef === 'string' && typeof o.bank === 'string' &&
    Array.isArray(o.pcrs) && typeof o.signingKeyPublic === 'string' && typeof o.signingKeyName === 'string' && Array.isArray(o.approvals)
  );
}

async function readEntries(stateDir: string): Promise<CacheEntry[]> {
  try {
    const document = JSON.parse((await readStateFile(stateDir, APPROVALS_CACHE_FILE, MAX_CACHE_BYTES)).toString('utf8')) as { format?: unknown; entries?: unknown };
    if (document.format !== CACHE_FORMAT || !Array.isArray(document.entries)) {
      return [];
    }
    return (document.entries as { fetchedAt?: unknown; approvals?: unknown }[]).filter((e): e is CacheEntry => typeof e?.fetchedAt === 'string' && isApprovals(e.approvals));
  } catch {
    // Missing, unreadable or not a cache: nothing cached (the next fetch writes a good one).
    return [];
  }
}

/** The cached answer of (group, epoch), if any. */
export async function cachedApprovals(stateDir: string, group: string, epoch: number): Promise<ApprovalsResponse | undefined> {
  return (await readEntries(stateDir)).find((e) => e.approvals.group === group && e.approvals.epoch === epoch)?.approvals;
}

/** Records a fresh answer: it replaces the one of its (group, epoch). */
export async function cacheApprovals(stateDir: string, approvals: ApprovalsResponse, now = new Date()): Promise<void> {
  const kept = (await readEntries(stateDir)).filter((e) => e.approvals.group !== approvals.group || e.approvals.epoch !== approvals.epoch);
  const entries = [{ fetchedAt: now.toISOString(), approvals }, ...kept].sort((a, b) => b.approvals.epoch - a.approvals.epoch).slice(0, MAX_CACHED);
  await writeStateFile(stateDir, APPROVALS_CACHE_FILE, Buffer.from(`${JSON.stringify({ format: CACHE_FORMAT, entries })}\n`, 'utf8'));
}
