/**
 * Remembers the nonces of accepted node requests until their timestamp leaves the window, so a
 * captured request cannot be sent again. The control plane backs it with a PostgreSQL table
 * (`INSERT … ON CONFLICT DO NOTHING` on (credential ID, nonce), shared by every replica; rows past
 * `expiresAt` may be deleted at leisure).
 */
export interface ReplayGuard {
  /** Records `nonce` for `credentialId` until `expiresAt`: true the first time, false if it was already recorded. */
  remember(credentialId: string, nonce: Buffer, expiresAt: Date): Promise<boolean>;
}

/**
 * A ReplayGuard in one process's memory, for tests and single-process tools: it forgets an entry
 * once `now()` reaches its `expiresAt` (dropped on the next call).
 */
export class MemoryReplayGuard implements ReplayGuard {
  readonly #seen = new Map<string, number>();

  constructor(private readonly now: () => Date) {}

  /** Entries not yet expired as of the last call. */
  get size(): number {
    return this.#seen.size;
  }

  async remember(credentialId: string, nonce: Buffer, expiresAt: Date): Promise<boolean> {
    const now = this.now().getTime();
    for (const [key, expires] of this.#seen) {
      if (expires <= now) {
        this.#seen.delete(key);
      }
    }
    const key = `${credentialId}:${nonce.toString('hex')}`;
    if (this.#seen.has(key)) {
      return false;
    }
    this.#seen.set(key, expiresAt.getTime());
    return true;
  }
}
