import { EV, explainPcrs, type HashAlgorithm, pcr0StartOf, type TcgEventLog, type TcgPcrEvent } from '@rackseal/tpm2';
import { eventDescription } from './event-description';

/** Reported divergences per PCR unless the caller says otherwise; the rest is one `limit-reached` line. */
export const DEFAULT_MAX_EVENTS_PER_PCR = 4;

/**
 * One event where the machine's log departs from the canary's, for one PCR:
 * - `digest-differs`: at the same place in both logs, the digests of the policy's bank differ;
 * - `extra-event`: the machine's log has an event the canary's has not (at that place);
 * - `missing-event`: the canary's log has an event the machine's has not.
 * Event numbers are libs/tpm2's: the record's position in its log from 0, the Spec ID header being
 * record 0 of a crypto-agile log (tpm2_eventlog's EventNum), EV_NO_ACTION records counted.
 */
export interface EventDivergence {
  readonly kind: 'digest-differs' | 'extra-event' | 'missing-event';
  readonly pcr: number;
  /** The event's number in the machine's log; undefined for `missing-event`. */
  readonly eventIndex: number | undefined;
  /** The number of the corresponding event in the canary's log; undefined for `extra-event`. */
  readonly referenceEventIndex: number | undefined;
  /** The PFP name of the event's type (the machine's event; the canary's for `missing-event`). */
  readonly eventType: string;
  /** Hex, in the policy's bank; undefined for `extra-event`. */
  readonly referenceDigest: string | undefined;
  /** Hex, in the policy's bank; undefined for `missing-event`. */
  readonly actualDigest: string | undefined;
  /** Decoded event text (image path, variable name, action string) when there is any: see eventDescription. */
  readonly description: string | undefined;
  /** One line: `PCR 4: event #27 EV_EFI_BOOT_SERVICES_APPLICATION digest differs (\EFI\ubuntu\grubx64.efi)`. */
  readonly summary: string;
}

/**
 * A log whose events for a PCR do not replay to the value they should: the machine's to its quoted
 * value (so the log cannot be trusted to say which event differs), or the canary's to the set's value
 * (so it is no reference). `pcr` is undefined when the whole log is unusable (it does not parse).
 */
export interface UntrustedLog {
  readonly kind: 'log-untrusted';
  readonly log: 'machine' | 'reference';
  readonly pcr: number | undefined;
  /** libs/tpm2's reason (explainPcrs or the parser). */
  readonly detail: string;
  readonly summary: string;
}

/** More divergences on this PCR than the caller's limit: they are not listed. */
export interface DivergenceLimit {
  readonly kind: 'limit-reached';
  readonly pcr: number;
  readonly summary: string;
}

/**
 * The PCR's events are the same in both logs, yet the values differ: only PCR 0 can do that, when
 * the two TPMs started it from another locality (TPM 2.0 Library Part 1 §34.3 for an H-CRTM, PFP
 * §10.4.5.3 StartupLocality), which libs/tpm2's pcr0StartOf reads from each log.
 */
export interface InitialValueDiffers {
  readonly kind: 'initial-value-differs';
  readonly pcr: number;
  /** PCR 0's initial locality byte in the machine's log and in the canary's (0: no StartupLocality event or H-CRTM). */
  readonly locality: number;
  readonly referenceLocality: number;
  readonly summary: string;
}

export type DivergenceExplanation = EventDivergence | UntrustedLog | DivergenceLimit | InitialValueDiffers;

export interface DivergenceInput {
  readonly hash: HashAlgorithm;
  /** The PCRs to explain (those whose quoted value differs from the set's), ascending. */
  readonly pcrs: readonly number[];
  readonly quoted: ReadonlyMap<number, Buffer>;
  /** The set's values of those PCRs. */
  readonly expected: ReadonlyMap<number, Buffer>;
  readonly set: string;
  readonly reference: { readonly machine: string; readonly log: TcgEventLog };
  readonly actual: TcgEventLog;
  readonly maxEventsPerPcr: number;
}

/**
 * Explains each differing PCR by the events of both logs. A PCR is a hash chain: comparing event by
 * event is meaningful only when both logs' events for it are exactly what was extended, i.e. when the
 * machine's log replays to its quoted value and the canary's to the set's value (libs/tpm2
 * explainPcrs). Otherwise that PCR gets a `log-untrusted` entry and no event is named.
 *
 * The walk goes through both logs' events for the PCR in order (EV_NO_ACTION is never extended, so
 * it is skipped), comparing digests of the policy's bank. At a difference it looks ahead for the
 * nearest place the two agree again: the machine's next events contain the canary's current one
 * (extra events), or the canary's next events contain the machine's current one (missing events,
 * the shorter gap winning, extra on a tie); with neither, the two events simply differ. Each step
 * reports one event, at most `maxEventsPerPcr` per PCR, so the work is O(limit × events of the PCR).
 */
export function explainDivergence(input: DivergenceInput): DivergenceExplanation[] {
  const { hash, reference, actual } = input;
  const machineTrust = replayStatus(actual, hash, input.quoted, input.pcrs);
  const referenceTrust = replayStatus(reference.log, hash, input.expected, input.pcrs);
  const referenceEvents = eventsByPcr(reference.log, hash);
  const actualEvents = eventsByPcr(actual, hash);
  const out: DivergenceExplanation[] = [];
  for (const pcr of input.pcrs) {
    const machineProblem = machineTrust.get(pcr);
    if (machineProblem !== undefined) {
      out.push({
        kind: 'log-untrusted',
        log: 'machine',
        pcr,
        detail: machineProblem,
        summary: `PCR ${pcr}: the machine's event log does not replay to the quoted value; it cannot be trusted to say which event differs`,
      });
      continue;
    }
    const referenceProblem = referenceTrust.get(pcr);
    if (referenceProblem !== undefined) {
      out.push({
        kind: 'log-untrusted',
        log: 'reference',
        pcr,
        detail: referenceProblem,
        summary: `PCR ${pcr}: ${reference.machine}'s event log does not replay to set "${input.set}"; it cannot say which event differs`,
      });
      continue;
    }
    const divergences = walk(pcr, referenceEvents.get(pcr) ?? [], actualEvents.get(pcr) ?? [], reference.machine, input.maxEventsPerPcr);
    if (divergences.length === 0) {
      // Both logs replay to their values and extend the same digests: the chains started apart.
      const locality = pcr0StartOf(actual)?.locality ?? 0;
      const referenceLocality = pcr0StartOf(reference.log)?.locality ?? 0;
      divergences.push({
        kind: 'initial-value-differs',
        pcr,
        locality,
        referenceLocality,
        summary: `PCR ${pcr}: the same events as ${reference.machine}'s log, started from another value (locality ${locality}, ${reference.machine}'s ${referenceLocality})`,
      });
    }
    out.push(...divergences);
  }
  return out;
}

interface Measured {
  readonly event: TcgPcrEvent;
  readonly digest: Buffer;
}

/** Each PCR's extended events with their digest in the bank, in log order (one pass over the log). */
function eventsByPcr(log: TcgEventLog, hash: HashAlgorithm): Map<number, Measured[]> {
  const byPcr = new Map<number, Measured[]>();
  for (const event of log.events) {
    const digest = event.digests.find((d) => d.hashAlg === hash.alg)?.digest;
    if (event.eventType === EV.EV_NO_ACTION || digest === undefined) {
      continue;
    }
    let list = byPcr.get(event.pcrIndex);
    if (list === undefined) {
      list = [];
      byPcr.set(event.pcrIndex, list);
    }
    list.push({ event, digest });
  }
  return byPcr;
}

/** PCR → why the log does not replay to `values` (absent: it does). */
function replayStatus(log: TcgEventLog, hash: HashAlgorithm, values: ReadonlyMap<number, Buffer>, pcrs: readonly number[]): Map<number, string> {
  const wanted = new Map(pcrs.flatMap((pcr) => (values.has(pcr) ? [[pcr, values.get(pcr)!] as const] : [])));
  const problems = new Map<number, string>();
  for (const explained of explainPcrs(log, new Map([[hash.bank, wanted]]))) {
    if (explained.status !== 'match') {
      problems.set(explained.pcrIndex, explained.message);
    }
  }
  return problems;
}

function walk(pcr: number, reference: readonly Measured[], actual: readonly Measured[], canary: string, limit: number): DivergenceExplanation[] {
  const out: DivergenceExplanation[] = [];
  let i = 0;
  let j = 0;
  while (i < reference.length || j < actual.length) {
    const ref = reference[i];
    const act = actual[j];
    if (ref !== undefined && act !== undefined && ref.digest.equals(act.digest)) {
      i += 1;
      j += 1;
      continue;
    }
    if (out.length === limit) {
      out.push({ kind: 'limit-reached', pcr, summary: `PCR ${pcr}: further divergences not listed (at most ${limit} per PCR)` });
      break;
    }
    const step = ref === undefined ? 'extra' : act === undefined ? 'missing' : resync(reference, i, actual, j);
    if (step === 'extra') {
      out.push(divergence('extra-event', pcr, undefined, act, canary));
      j += 1;
    } else if (step === 'missing') {
      out.push(divergence('missing-event', pcr, ref, undefined, canary));
      i += 1;
    } else {
      out.push(divergence('digest-differs', pcr, ref, act, canary));
      i += 1;
      j += 1;
    }
  }
  return out;
}

/** At a difference: the nearest re-alignment, as described on explainDivergence. */
function resync(reference: readonly Measured[], i: number, actual: readonly Measured[], j: number): 'extra' | 'missing' | 'differs' {
  const extra = nextEqual(actual, j + 1, reference[i]!.digest);
  const missing = nextEqual(reference, i + 1, actual[j]!.digest);
  if (extra !== undefined && (missing === undefined || extra - j <= missing - i)) {
    return 'extra';
  }
  return missing !== undefined ? 'missing' : 'differs';
}

function nextEqual(events: readonly Measured[], from: number, digest: Buffer): number | undefined {
  for (let k = from; k < events.length; k += 1) {
    if (events[k]!.digest.equals(digest)) {
      return k;
    }
  }
  return undefined;
}

function divergence(kind: EventDivergence['kind'], pcr: number, ref: Measured | undefined, act: Measured | undefined, canary: string): EventDivergence {
  const shown = (act ?? ref)!;
  const description = eventDescription(shown.event);
  const suffix = description === undefined ? '' : ` (${description})`;
  const type = shown.event.eventTypeName;
  const summary =
    kind === 'digest-differs'
      ? `PCR ${pcr}: event #${act!.event.index} ${type} digest differs${suffix}`
      : kind === 'extra-event'
        ? `PCR ${pcr}: event #${act!.event.index} ${type} is extra, not in ${canary}'s log${suffix}`
        : `PCR ${pcr}: ${canary}'s event #${ref!.event.index} ${type} is missing${suffix}`;
  return {
    kind,
    pcr,
    eventIndex: act?.event.index,
    referenceEventIndex: ref?.event.index,
    eventType: type,
    referenceDigest: ref?.digest.toString('hex'),
    actualDigest: act?.digest.toString('hex'),
    description,
    summary,
  };
}
