import { allowedByDigests, type EvaluationContext, type ImaVerdict, isPlainlyAllowed, judgeImaEntry } from './evaluate';
import type { ImaEntry } from './ima-entry';
import type { RuntimePolicy } from './runtime-policy';

export interface JudgedEntries {
  /** Every entry's verdict, in order, built on the first call (most are plain allowances). */
  readonly all: () => readonly ImaVerdict[];
  readonly failures: readonly ImaVerdict[];
  /** For each key `context.learned` gained, the position of the entry that taught it. */
  readonly learnedAt: readonly number[];
}

/**
 * Judges a window of entries. Only entries that need more than the digests list (excluded, signed,
 * buffers, failures, …) get their verdict now; the plainly allowed ones are marked and get theirs
 * from allowedByDigests when `all` is called. A full 100,000-entry list spent a fifth of its time
 * building verdicts nobody reads on a pass (bench/ima.bench.ts); a round's failures are what it keeps.
 */
export function judgeEntries(entries: readonly ImaEntry[], invalidTemplateHashes: readonly number[], policy: RuntimePolicy, context: EvaluationContext): JudgedEntries {
  const invalid = invalidTemplateHashes.length === 0 ? undefined : new Set(invalidTemplateHashes);
  // The verdicts of the entries not plainly allowed, by position: few, so a Map (an array of
  // 100,000 holes is a dictionary-mode array in V8, and showed in the bench's profile).
  const judged = new Map<number, ImaVerdict>();
  const failures: ImaVerdict[] = [];
  const learnedAt: number[] = [];
  for (let i = 0; i < entries.length; i += 1) {
    const entry = entries[i]!;
    const templateHashValid = invalid === undefined || !invalid.has(i);
    if (isPlainlyAllowed(entry, templateHashValid, policy, context)) {
      continue;
    }
    const before = context.learned.length;
    const verdict = judgeImaEntry(entry, templateHashValid, policy, context);
    for (let k = before; k < context.learned.length; k += 1) {
      learnedAt.push(i);
    }
    judged.set(i, verdict);
    if (!verdict.ok) {
      failures.push(verdict);
    }
  }
  let all: readonly ImaVerdict[] | undefined;
  return {
    all: () => (all ??= entries.map((entry, i) => judged.get(i) ?? allowedByDigests(entry, policy))),
    failures,
    learnedAt,
  };
}
