import type { PolicyMode } from './policies';

/**
 * A group's runtime policy (issue 17): a Keylime runtime policy (`keylime-policy create runtime`'s
 * JSON; libs/ima parseRuntimePolicy validates it) and its own mode — `enforce`: a machine whose IMA
 * measurement list fails it is quarantined; `warn`: the failure is recorded, the machine attested.
 *
 *   GET    /v1/groups/:group/runtime-policy               → GroupRuntimePolicy   (policy:read)
 *   PUT    /v1/groups/:group/runtime-policy               SetRuntimePolicyRequest → GroupRuntimePolicy (policy:write)
 *   POST   /v1/groups/:group/runtime-policy/from-machine  RuntimePolicyFromMachineRequest → GroupRuntimePolicy (policy:write)
 *   DELETE /v1/groups/:group/runtime-policy               → RuntimePolicyRemoval (policy:write)
 */

/** libs/ima's limit on a policy's JSON (RUNTIME_POLICY_LIMITS.bytes), with room for the request around it. */
export const RUNTIME_POLICY_BODY_LIMIT_BYTES = 64 * 1024 * 1024 + 64 * 1024;

export interface SetRuntimePolicyRequest {
  /** The Keylime runtime policy document (an object, as `keylime-policy create runtime` writes it). */
  readonly policy: Readonly<Record<string, unknown>>;
  /** Default `enforce`. */
  readonly mode?: PolicyMode;
}

/**
 * `rackseal policy runtime set GROUP --from-machine REF`: the canary's measurements verified this
 * boot (files and digests of the entries its quotes covered) as an allowlist in Keylime's format.
 */
export interface RuntimePolicyFromMachineRequest {
  /** The machine's UUID or serial; it must be of the group. */
  readonly machine: string;
  /** Default `enforce`. */
  readonly mode?: PolicyMode;
  /** Keylime `excludes` (Python regular expressions, libs/ima's linear-time subset) to add. */
  readonly excludes?: readonly string[];
}

export interface GroupRuntimePolicy<Time = string> {
  readonly group: string;
  readonly mode: PolicyMode;
  /** Lowercase hex SHA-256 of the policy JSON as stored: audit records and verdicts name it. */
  readonly sha256: string;
  /** The policy document as stored. */
  readonly policy: Readonly<Record<string, unknown>>;
  /** Files with allowed digests, and exclude patterns: the policy at a glance. */
  readonly paths: number;
  readonly excludes: number;
  readonly updatedAt: Time;
  readonly updatedBy: string;
}

export interface RuntimePolicyRemoval {
  readonly group: string;
  readonly removed: boolean;
}

/** One failed IMA entry of a verdict. */
export interface RuntimeFailureView {
  readonly index: number;
  /** not-in-allowlist, digest-mismatch, violation, bad-signature, template-hash-mismatch, unexpected-pcr. */
  readonly kind: string;
  readonly path: string;
  /** "alg:hex" the machine measured. */
  readonly digest: string;
  /** The policy part that decided (`digests`, `excludes[0] "…"`, `signature key 0x…`, …). */
  readonly rule: string;
  readonly expected?: readonly string[];
}

/** The machine's last runtime verdict (GET /v1/machines/:ref/evidence, `runtime`). */
export interface RuntimeVerdictView {
  readonly at: string;
  readonly registrationId: string;
  readonly decision: 'pass' | 'fail';
  readonly mode: PolicyMode;
  readonly policySha256: string;
  readonly reason?: string;
  readonly firstEntry: number;
  readonly entriesChecked: number;
  readonly nextEntry: number;
  readonly failureCount: number;
  /** The first 50 failures. */
  readonly failures: readonly RuntimeFailureView[];
}
