import { digest, isHashAlgorithm } from '../hash-algorithms';
import type { EventData } from './event-data';
import { EV } from './event-types';

/** One digest of an event: TPMT_HA (Part 2 §10.3.2) as TCG_PCR_EVENT2 carries it, little-endian alg. */
export interface EventDigest {
  readonly hashAlg: number;
  readonly digest: Buffer;
}

/**
 * What an event's digests prove about its data. Replay uses only digests; decoded data is worth
 * something only when the digests are recomputed from it:
 * - `event-data`: every digest (of an algorithm we implement) equals H(event data) — the data is
 *   exactly what was measured, whatever the event type;
 * - `variable-data`: EV_EFI_VARIABLE_BOOT where every digest equals H(VariableData), as EDK2 measures
 *   Boot####/BootOrder — the value is bound, the GUID and name beside it are NOT;
 * - `mismatch`: the PFP defines this type's digest as H(event data) and it is not — do not trust the
 *   data (sb_cert_eventlog: shim's `Shim` EV_EFI_VARIABLE_AUTHORITY measures one byte less than it logs);
 * - `not-extended`: EV_NO_ACTION, never extended, so nothing binds it;
 * - `not-recomputable`: the digest covers something the log does not carry (a PE image, a firmware
 *   volume, a kernel), or no digest is of an algorithm we implement.
 */
export type DigestCheck = 'event-data' | 'variable-data' | 'mismatch' | 'not-extended' | 'not-recomputable';

/**
 * Event types whose digest the PFP (§10.4.1 and the event descriptions after it) defines as the hash of
 * the event data itself. Checked against the real logs in test/fixtures/eventlogs: every
 * EV_SEPARATOR, EV_S_CRTM_VERSION, EV_EFI_ACTION, EV_EFI_GPT_EVENT and EV_EFI_VARIABLE_DRIVER_CONFIG
 * there matches; EV_EFI_VARIABLE_BOOT mostly measures only VariableData; two shim-written
 * EV_EFI_VARIABLE_AUTHORITY events match neither.
 */
const DIGEST_IS_HASH_OF_DATA: ReadonlySet<number> = new Set([
  EV.EV_SEPARATOR,
  EV.EV_ACTION,
  EV.EV_EFI_ACTION,
  EV.EV_S_CRTM_VERSION,
  EV.EV_EFI_VARIABLE_DRIVER_CONFIG,
  EV.EV_EFI_VARIABLE_BOOT,
  EV.EV_EFI_VARIABLE_BOOT2,
  EV.EV_EFI_VARIABLE_AUTHORITY,
  EV.EV_EFI_GPT_EVENT,
]);

export function checkDigests(eventType: number, digests: readonly EventDigest[], data: Buffer, decoded: EventData): DigestCheck {
  if (eventType === EV.EV_NO_ACTION) {
    return 'not-extended';
  }
  // Algorithms the Spec ID event declares but this library does not support cannot be recomputed.
  // Cheapest first (SHA-1 before SHA-384): a mismatch, the common case for images, costs one hash.
  const known = digests.filter((d) => isHashAlgorithm(d.hashAlg)).sort((a, b) => a.digest.length - b.digest.length);
  if (known.length === 0) {
    return 'not-recomputable';
  }
  if (allMatch(known, data)) {
    return 'event-data';
  }
  if (eventType === EV.EV_EFI_VARIABLE_BOOT && decoded.kind === 'uefi-variable' && allMatch(known, decoded.variable.variableData)) {
    return 'variable-data';
  }
  return DIGEST_IS_HASH_OF_DATA.has(eventType) ? 'mismatch' : 'not-recomputable';
}

/**
 * The per-event `digestVerified` flag: the whole event data is what was measured. Deliberately false
 * for `variable-data`: there a consumer reading the variable's name (BootOrder, Boot0001…) would be
 * reading bytes nothing binds; one that wants the bound value asks for `digestCheck` explicitly.
 */
export function isDigestVerified(check: DigestCheck): boolean {
  return check === 'event-data';
}

function allMatch(digests: readonly EventDigest[], data: Buffer): boolean {
  return digests.every((d) => d.digest.equals(digest(d.hashAlg, data)));
}
