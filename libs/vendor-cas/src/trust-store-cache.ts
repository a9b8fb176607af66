import type { TrustStore } from '@rackseal/ek-trust';
import type { DataSource, EntityManager } from 'typeorm';
import { type TrustStoreRow, vendorCaRepository } from './vendor-cas.repository';
import { trustStoreFromRows } from './vendor-cas';

/**
 * loadTrustStore for a caller that needs the store on every request (attestation start). Building
 * it parses every stored CA certificate and imports its key; the attestation benchmark's profile
 * showed that at 7 % of the control plane's CPU. Here the built store is kept and reused while the
 * `vendor_cas` rows it was built from are unchanged: each call still reads every row's fingerprint
 * and flags (anchor, enabled, source) through the caller's transaction — one light query, no DER —
 * so a CA added, removed, disabled, enabled or pinned by any replica or the CLI is seen by the next
 * call exactly as before. A fingerprint is the SHA-256 of the DER, so equal rows mean equal
 * certificates. The shared store must not be mutated: verifyEkChain only reads it.
 */
export class TrustStoreCache {
  private cached: { readonly key: string; readonly store: TrustStore } | undefined;

  async load(manager: EntityManager | DataSource): Promise<TrustStore> {
    const current = keyOf(await vendorCaRepository.trustStoreFlags(manager));
    if (this.cached?.key === current) {
      return this.cached.store;
    }
    // The key is taken from the rows the store is built from, not from the read above: a change
    // committed between the two reads can never leave a store cached under the other state's key.
    const rows = await vendorCaRepository.trustStoreRows(manager);
    const store = trustStoreFromRows(rows);
    this.cached = { key: keyOf(rows), store };
    return store;
  }
}

function keyOf(rows: readonly Omit<TrustStoreRow, 'der'>[]): string {
  return JSON.stringify(rows.map((r) => [r.fingerprint, r.isAnchor, r.enabled, r.source]));
}
