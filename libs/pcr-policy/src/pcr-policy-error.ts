/**
 * Why a PCR policy, or a set promoted into one, was refused. `field` is the JSON path of the bad
 * value (`allowedSets[1].values.4`), so the operator API can point at it; messages name lengths,
 * indexes and labels, never echo a whole digest list or event log.
 */
export class PcrPolicyError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${field}: ${reason}`);
    this.name = 'PcrPolicyError';
  }
}
