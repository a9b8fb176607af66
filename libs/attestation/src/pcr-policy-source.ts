import type { PcrPolicy } from '@rackseal/pcr-policy';
import type { EntityManager } from 'typeorm';

/**
 * Where the attestation service finds a machine group's PCR policy (issue 12 item 3). An injected
 * interface so the policy store (the operator API's `policy set|promote`) can land without this
 * library changing; `group` is null for a machine imported without one. `manager` is the calling
 * transaction's: a source that reads the database must read through it, never take a second pool
 * connection while the transaction holds one (with every connection held by a transaction waiting
 * for another, the pool deadlocks until its connect timeout and every call answers 503).
 */
export abstract class PcrPolicySource {
  abstract policyFor(group: string | null, manager?: EntityManager): Promise<PcrPolicy | undefined>;
}

/**
 * No group has a policy: every attestation that passes the cryptographic checks is refused with
 * `attestation.no-policy` and the machine quarantined with its measured values recorded, from which
 * a canary's values can be promoted. What a group without a row in `pcr_policies` gets too: a machine
 * is never attested on no policy at all (docs/decisions.md, "Enrollment protocol").
 */
export class NoPcrPolicySource extends PcrPolicySource {
  policyFor(): Promise<PcrPolicy | undefined> {
    return Promise.resolve(undefined);
  }
}

/** The selection asked for when the group has no policy: the SRTM PCRs 0-7 of the SHA-256 bank. */
export const DEFAULT_PCR_SELECTION = { bank: 'sha256', pcrs: [0, 1, 2, 3, 4, 5, 6, 7] } as const;
