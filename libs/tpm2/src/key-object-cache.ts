import type { KeyObject } from 'node:crypto';

/**
 * The KeyObjects of recently used public areas, least recently used evicted first. A fresh
 * KeyObject costs more than its JWK import (~2.5 µs): OpenSSL prepares a key on its first public
 * operation (the provider's copy of the key, the modulus's Montgomery context), measured at ~12 µs
 * more CPU for an RSA-2048 OAEP encryption that takes ~22 µs once the key is prepared (bench/README.md,
 * wrap). A control plane wraps secret after secret to the same certified keys and EKs, and verifies
 * quote after quote from the same AKs, so it keeps the prepared key. Keyed by the bytes that determine the key (see
 * publicKeyFromTpmt), never by the object holding them: public areas are parsed afresh per request.
 * KeyObjects are immutable, so sharing one is safe.
 */
export class KeyObjectCache {
  private readonly entries = new Map<string, KeyObject>();

  constructor(private readonly maxEntries: number) {}

  /** The cached KeyObject for `key`, else `create()`'s, kept. A throwing `create` caches nothing. */
  get(key: string, create: () => KeyObject): KeyObject {
    const cached = this.entries.get(key);
    if (cached !== undefined) {
      // Map iteration follows insertion order: re-inserting makes this the most recently used.
      this.entries.delete(key);
      this.entries.set(key, cached);
      return cached;
    }
    const created = create();
    this.entries.set(key, created);
    if (this.entries.size > this.maxEntries) {
      this.entries.delete(this.entries.keys().next().value!);
    }
    return created;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Drops every KeyObject held. */
  clear(): void {
    this.entries.clear();
  }
}
