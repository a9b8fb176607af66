import { TpmError } from '../client/tpm-errors';
import type { TpmClient } from '../client/tpm-client';
import { tpm2FlushContext } from '../commands/context-management';

/** Part 2 §7.2 TPM_HT: only these kinds of handle occupy TPM memory until flushed. */
const FLUSHABLE_TYPES = new Set([0x02 /* HMAC session */, 0x03 /* policy session */, 0x80 /* transient object */]);

/** Flushing some of a scope's handles failed after its work succeeded; the TPM may hold them still. */
export class TpmScopeCleanupError extends Error {
  constructor(
    /** The handles that could not be flushed, with why. */
    readonly failures: readonly { readonly handle: number; readonly error: unknown }[],
  ) {
    super(
      `could not flush ${failures.map((f) => `0x${f.handle.toString(16)} (${f.error instanceof Error ? f.error.message : String(f.error)})`).join(', ')}`,
    );
    this.name = 'TpmScopeCleanupError';
  }
}

/**
 * The transient objects and sessions one piece of work loads into the TPM, flushed when the work
 * ends, whether it succeeded or threw. swtpm and /dev/tpm0 have no resource manager: without this,
 * every failed Unseal would leave a session and an object behind until the TPM runs out of slots
 * (TPM_RC_OBJECT_MEMORY after about three objects).
 *
 *   const data = await withTpmScope(client, async (scope) => {
 *     const ek = await getEndorsementKey(scope);
 *     return unsealImportedBlob(scope, ek, blob, selection);
 *   });
 *
 * Operations take the caller's scope and put in it what they hand back (a loaded AK, a transient
 * EK); what they use only internally (policy sessions, a storage primary) lives in a nested scope
 * they close themselves.
 */
export class TpmScope {
  /** Handles to flush, in the order they were loaded; flushed newest first. */
  private readonly handles: number[] = [];

  constructor(readonly client: TpmClient) {}

  /**
   * Makes the scope responsible for `handle`. Persistent and permanent handles are not the scope's
   * to flush and are ignored, so callers may pass whatever handle an operation returned.
   */
  track(handle: number): number {
    if (FLUSHABLE_TYPES.has(handle >>> 24) && !this.handles.includes(handle)) {
      this.handles.push(handle);
    }
    return handle;
  }

  /** The TPM flushed `handle` itself: a session used without continueSession in a command that succeeded. */
  forget(handle: number): void {
    const at = this.handles.indexOf(handle);
    if (at >= 0) {
      this.handles.splice(at, 1);
    }
  }

  /** Flushes `handle` now (a sealed object right after Unseal frees its slot for the next one). */
  async flush(handle: number): Promise<void> {
    this.forget(handle);
    await flushIfLoaded(this.client, handle);
  }

  /** Runs `work` in a scope of its own, closed (flushed) when `work` ends. */
  nested<T>(work: (scope: TpmScope) => Promise<T>): Promise<T> {
    return withTpmScope(this.client, work);
  }

  /** Flushes everything still tracked, newest first; every flush is attempted even if one fails. */
  async close(): Promise<void> {
    const failures: { handle: number; error: unknown }[] = [];
    while (this.handles.length > 0) {
      const handle = this.handles.pop()!;
      try {
        await flushIfLoaded(this.client, handle);
      } catch (error) {
        failures.push({ handle, error });
      }
    }
    if (failures.length > 0) {
      throw new TpmScopeCleanupError(failures);
    }
  }
}

/**
 * FlushContext that accepts the handle being gone already (TPM_RC_HANDLE): a session the TPM closed
 * after the command that failed with it, or anything after a TPM reset. Gone is what we wanted.
 */
async function flushIfLoaded(client: TpmClient, handle: number): Promise<void> {
  try {
    await tpm2FlushContext(client, handle);
  } catch (error) {
    if (!(error instanceof TpmError && error.is('TPM_RC_HANDLE'))) {
      throw error;
    }
  }
}

/**
 * Runs `work` with a fresh scope and flushes what it tracked afterwards. When `work` throws, its
 * error is what the caller sees (a flush failing too is most likely the same broken transport);
 * when only the flush fails, TpmScopeCleanupError says which handles may remain.
 */
export async function withTpmScope<T>(client: TpmClient, work: (scope: TpmScope) => Promise<T>): Promise<T> {
  const scope = new TpmScope(client);
  let result: T;
  try {
    result = await work(scope);
  } catch (error) {
    await scope.close().catch(() => undefined);
    throw error;
  }
  await scope.close();
  return result;
}
