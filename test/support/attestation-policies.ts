/**
 * What the attestation tests share on the server's side: a clock they can move (registration expiry,
 * request timestamps), group policies they set directly, and the policy a fresh swtpm satisfies.
 */
import { PcrPolicySource } from '@rackseal/attestation';
import { type PcrPolicy, parsePcrPolicy } from '@rackseal/pcr-policy';
import { Clock } from '@rackseal/platform';

/** The wall clock plus an offset the tests move. */
export class MovableClock extends Clock {
  offsetMs = 0;
  /** When set, time stands still at this instant (plus the offset): boundaries tested to the second then do not depend on how long a request takes. */
  frozenAtMs: number | undefined;
  now(): Date {
    return new Date((this.frozenAtMs ?? Date.now()) + this.offsetMs);
  }
}

/** Policies by group, set by the tests. */
export class TestPolicies extends PcrPolicySource {
  readonly byGroup = new Map<string, PcrPolicy>();
  policyFor(group: string | null): Promise<PcrPolicy | undefined> {
    return Promise.resolve(group === null ? undefined : this.byGroup.get(group));
  }
}

/** The PCRs of the static root of trust for measurement (TCG PC Client PFP: PCRs 0-7). */
export const SRTM = [0, 1, 2, 3, 4, 5, 6, 7];

/** A fresh swtpm's SHA-256 PCRs 0-7 are all zero: this enforce policy attests it, and any extend is drift. */
export const FRESH_SWTPM_POLICY = parsePcrPolicy({
  bank: 'sha256',
  pcrs: SRTM,
  allowedSets: [{ label: 'fresh swtpm', values: Object.fromEntries(SRTM.map((pcr) => [pcr, '00'.repeat(32)])) }],
  mode: 'enforce',
});
