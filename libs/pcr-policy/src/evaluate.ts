import { hashAlgorithmByBank, parseEventLog, type TcgEventLog, TpmParseError } from '@rackseal/tpm2';
import { DEFAULT_MAX_EVENTS_PER_PCR, type DivergenceExplanation, explainDivergence } from './divergence';
import type { PcrPolicy, PcrValueSet, QuotedPcrValues } from './pcr-policy';
import { echoed } from './text';

export interface EvaluateOptions {
  /** The machine's raw TCG event log, to explain a mismatch event by event. */
  readonly eventLog?: Buffer;
  /** At most this many divergent events reported per PCR (default DEFAULT_MAX_EVENTS_PER_PCR). */
  readonly maxEventsPerPcr?: number;
}

/**
 * A PCR that does not hold the value the closest set expects:
 * `differs` (the quote has another value), `not-quoted` (the quote has no value for it),
 * `other-bank` (the quote is of another bank, so no value of the policy's bank is known).
 */
export interface PcrMismatch {
  readonly pcr: number;
  readonly reason: 'differs' | 'not-quoted' | 'other-bank';
  /** The quoted value in hex; undefined when not quoted or in another bank. */
  readonly actual: string | undefined;
  /** Every allowed set's value for this PCR, in the policy's order. */
  readonly expected: readonly { readonly set: string; readonly value: string }[];
}

export interface PolicyVerdict {
  readonly decision: 'match' | 'mismatch';
  /** The label of the first set the quote equals, on a match. */
  readonly matchedSet?: string;
  /** The policy's mode is `enforce`: a mismatch must quarantine the machine (in `warn` mode it is only recorded). */
  readonly enforced: boolean;
  /** On a mismatch, the set the mismatches and the explanation are against: the one with the fewest differing PCRs (the first on a tie). */
  readonly closestSet?: string;
  readonly mismatches: readonly PcrMismatch[];
  readonly explanation: readonly DivergenceExplanation[];
  /** Why there is no event-level explanation of a mismatch, when there is none. */
  readonly explanationNote?: string;
  /** One line per mismatch, then one per explanation entry: what the machine's record shows. */
  readonly summary: readonly string[];
}

/**
 * Evaluates a verified quote's PCR values against a policy (parsePcrPolicy's output). Quoted PCRs the
 * policy does not list are ignored: whether the quote covers the selection asked for is checked before.
 * Throws only RangeError for a bad maxEventsPerPcr, never for the machine's data: an event log that
 * does not parse is reported in the explanation.
 */
export function evaluatePcrPolicy(policy: PcrPolicy, quoted: QuotedPcrValues, options: EvaluateOptions = {}): PolicyVerdict {
  const limit = options.maxEventsPerPcr;
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) {
    throw new RangeError(`maxEventsPerPcr must be a positive integer, not ${limit}`);
  }
  const enforced = policy.mode === 'enforce';
  const expectedOf = (pcr: number) => policy.allowedSets.map((set) => ({ set: set.label, value: set.values[pcr]! }));
  if (quoted.bank !== policy.bank) {
    const mismatches = policy.pcrs.map((pcr): PcrMismatch => ({ pcr, reason: 'other-bank', actual: undefined, expected: expectedOf(pcr) }));
    const line = `the quote is of the ${echoed(quoted.bank, 16)} bank, the policy's is ${policy.bank}: no PCR of the policy is quoted`;
    return { decision: 'mismatch', enforced, mismatches, explanation: [], explanationNote: line, summary: [line] };
  }

  const actual = new Map(policy.pcrs.map((pcr) => [pcr, quoted.values.get(pcr)?.toString('hex')]));
  const differing = policy.allowedSets.map((set) => policy.pcrs.filter((pcr) => actual.get(pcr) !== set.values[pcr]));
  const matched = differing.findIndex((pcrs) => pcrs.length === 0);
  if (matched >= 0) {
    return { decision: 'match', matchedSet: policy.allowedSets[matched]!.label, enforced, mismatches: [], explanation: [], summary: [] };
  }

  const closest = differing.reduce((best, pcrs, i) => (pcrs.length < differing[best]!.length ? i : best), 0);
  const set = policy.allowedSets[closest]!;
  const mismatches = differing[closest]!.map(
    (pcr): PcrMismatch => ({ pcr, reason: actual.get(pcr) === undefined ? 'not-quoted' : 'differs', actual: actual.get(pcr), expected: expectedOf(pcr) }),
  );
  const lines = mismatches.map((m) =>
    m.reason === 'not-quoted' ? `PCR ${m.pcr}: not in the quote` : `PCR ${m.pcr}: quoted ${m.actual}, set "${set.label}" has ${set.values[m.pcr]}`,
  );
  const explained = explain(policy, set, quoted, mismatches, options);
  return {
    decision: 'mismatch',
    enforced,
    closestSet: set.label,
    mismatches,
    ...explained,
    summary: [...lines, ...explained.explanation.map((e) => e.summary), ...(explained.explanationNote === undefined ? [] : [explained.explanationNote])],
  };
}

function explain(
  policy: PcrPolicy,
  set: PcrValueSet,
  quoted: QuotedPcrValues,
  mismatches: readonly PcrMismatch[],
  options: EvaluateOptions,
): { explanation: DivergenceExplanation[]; explanationNote?: string } {
  const pcrs = mismatches.filter((m) => m.reason === 'differs').map((m) => m.pcr);
  if (pcrs.length === 0) {
    return { explanation: [], explanationNote: 'no differing value to explain: the quote lacks PCRs of the policy' };
  }
  const promoted = set.promotedFrom;
  if (promoted?.eventLog === undefined) {
    return { explanation: [], explanationNote: `set "${set.label}" was not promoted with a canary's event log: no event-level explanation` };
  }
  if (options.eventLog === undefined) {
    return { explanation: [], explanationNote: 'no event log from the machine: no event-level explanation' };
  }
  let actual: TcgEventLog;
  try {
    actual = parseEventLog(options.eventLog);
  } catch (error) {
    if (!(error instanceof TpmParseError)) {
      throw error;
    }
    return {
      explanation: [
        { kind: 'log-untrusted', log: 'machine', pcr: undefined, detail: error.message, summary: `the machine's event log does not parse (${error.message}); it cannot say which event differs` },
      ],
    };
  }
  const hash = hashAlgorithmByBank(policy.bank);
  const explanation = explainDivergence({
    hash,
    pcrs,
    quoted: quoted.values,
    expected: new Map(pcrs.map((pcr) => [pcr, Buffer.from(set.values[pcr]!, 'hex')])),
    set: set.label,
    reference: { machine: promoted.machine, log: referenceLog(set, promoted.eventLog) },
    actual,
    maxEventsPerPcr: options.maxEventsPerPcr ?? DEFAULT_MAX_EVENTS_PER_PCR,
  });
  return { explanation };
}

/** Parsed canary logs, per set object: the attestation service evaluates many quotes against one policy. */
const REFERENCE_LOGS = new WeakMap<PcrValueSet, TcgEventLog>();

/** parsePcrPolicy already parsed this log, so a TpmParseError here means the policy did not come from it. */
function referenceLog(set: PcrValueSet, base64: string): TcgEventLog {
  let log = REFERENCE_LOGS.get(set);
  if (log === undefined) {
    log = parseEventLog(Buffer.from(base64, 'base64'));
    REFERENCE_LOGS.set(set, log);
  }
  return log;
}
