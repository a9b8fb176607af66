/** PCR index (decimal) → lowercase hex: a quote's values or an allowed set's. */
export type PcrValues = Readonly<Record<number, string>>;

/** The PCRs of `pcrs` whose value in `a` is not the one in `b` (a PCR missing from either differs). */
export function differingPcrs(pcrs: readonly number[], a: PcrValues, b: PcrValues): number[] {
  return pcrs.filter((pcr) => a[pcr] === undefined || a[pcr] !== b[pcr]);
}

/**
 * The allowed set nearest to `values`: fewest differing PCRs, the first in the policy's order on a
 * tie (what an operator compares a failing machine with). Undefined without sets.
 */
export function nearestSet(pcrs: readonly number[], sets: readonly { readonly label: string; readonly values: PcrValues }[], values: PcrValues): { nearestSet: string; differingPcrs: number[] } | undefined {
  let best: { nearestSet: string; differingPcrs: number[] } | undefined;
  for (const set of sets) {
    const differing = differingPcrs(pcrs, values, set.values);
    if (best === undefined || differing.length < best.differingPcrs.length) {
      best = { nearestSet: set.label, differingPcrs: differing };
    }
  }
  return best;
}
