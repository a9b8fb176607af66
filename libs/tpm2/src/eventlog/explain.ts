import { algName } from '../constants';
import { hashAlgorithmByBank, isHashAlgorithm } from '../hash-algorithms';
import type { TcgEventLog } from './event-log';
import { pcr0StartOf, pcrHistories, pcrResetValue } from './replay';

/** Quoted PCR values: bank name (`sha1`, `sha256`…) → PCR index → value. */
export type QuotedPcrs = ReadonlyMap<string, ReadonlyMap<number, Uint8Array>>;

interface PcrExplanationBase {
  readonly bank: string;
  readonly pcrIndex: number;
  readonly quoted: Buffer;
  /** What the whole log replays to (the reset value when the log has no event for this PCR). */
  readonly replayed: Buffer | undefined;
  /** Indexes (into log.events) of the events extended into this PCR, in log order. */
  readonly events: readonly number[];
  /** One sentence for an operator. */
  readonly message: string;
}

/**
 * Why a quoted PCR does or does not match the log. A PCR is a hash chain, so the only thing a
 * verifier can locate is whether the quoted value is the replay of some PREFIX of the PCR's events:
 * - `match`: the whole log replays to the quoted value;
 * - `extra-events`: the quote equals the replay of the first `matchedEvents` events; `firstExtraEvent`
 *   onwards are in the log but not in the quoted PCR (quote taken earlier, or events added to the log);
 * - `unexplained`: no prefix (the empty one included) gives the quoted value: the log is incomplete
 *   (events missing, e.g. extended after the log was read) or one of its digests differs from what was
 *   extended — which of the two, and where, the hashes cannot tell; `lastEvent` is the log's last
 *   event for this PCR;
 * - `bank-not-in-log`: the log carries no digests of this bank (or none this library can hash).
 */
export type PcrExplanation =
  | (PcrExplanationBase & { readonly status: 'match' })
  | (PcrExplanationBase & { readonly status: 'extra-events'; readonly matchedEvents: number; readonly firstExtraEvent: number })
  | (PcrExplanationBase & { readonly status: 'unexplained'; readonly lastEvent: number | undefined })
  | (PcrExplanationBase & { readonly status: 'bank-not-in-log' });

/**
 * Compares quoted PCRs with the log, one explanation per quoted PCR (bank, then index ascending).
 * A quoted PCR the log never extends must hold its reset value (pcrResetValue).
 */
export function explainPcrs(log: TcgEventLog, quoted: QuotedPcrs): PcrExplanation[] {
  const histories = pcrHistories(log);
  // The same initial values as pcrHistories, also for PCRs the log never extends.
  const pcr0Locality = pcr0StartOf(log)?.locality;
  // Banks the log carries that this library cannot hash, by tpm2-tools' bank name (TPM_ALG_SM3_256 → sm3_256).
  const unhashable = new Set(log.algorithms.filter((alg) => !isHashAlgorithm(alg)).map((alg) => algName(alg).replace(/^TPM_ALG_/, '').toLowerCase()));
  const explanations: PcrExplanation[] = [];
  for (const [bank, pcrs] of quoted) {
    const bankHistories = histories.get(bank);
    for (const [pcrIndex, value] of [...pcrs].sort(([a], [b]) => a - b)) {
      const quotedValue = Buffer.from(value);
      const hex = quotedValue.toString('hex');
      if (bankHistories === undefined) {
        explanations.push({
          status: 'bank-not-in-log',
          bank,
          pcrIndex,
          quoted: quotedValue,
          replayed: undefined,
          events: [],
          message: unhashable.has(bank.toLowerCase())
            ? `${bank} PCR ${pcrIndex}: the log carries ${bank} digests, but rackseal does not implement ${bank} and cannot replay them`
            : `${bank} PCR ${pcrIndex}: the log has no ${bank} digests to replay`,
        });
        continue;
      }
      const history = bankHistories.get(pcrIndex);
      const initial = history?.initial ?? pcrResetValue(hashAlgorithmByBank(bank).size, pcrIndex, pcr0Locality);
      const values = [initial, ...(history?.steps.map((s) => s.value) ?? [])];
      const events = history?.steps.map((s) => s.event) ?? [];
      const replayed = values.at(-1)!;
      const base = { bank, pcrIndex, quoted: quotedValue, replayed, events };
      const matched = values.findIndex((v) => v.equals(quotedValue));
      if (matched === values.length - 1) {
        explanations.push({ ...base, status: 'match', message: `${bank} PCR ${pcrIndex}: matches the log (${events.length} event(s))` });
      } else if (matched >= 0) {
        const firstExtraEvent = events[matched]!;
        explanations.push({
          ...base,
          status: 'extra-events',
          matchedEvents: matched,
          firstExtraEvent,
          message:
            `${bank} PCR ${pcrIndex}: the quote equals the replay of the first ${matched} of ${events.length} event(s); ` +
            `the log has ${events.length - matched} event(s) the quote does not include, from event ${firstExtraEvent}`,
        });
      } else {
        const lastEvent = events.at(-1);
        explanations.push({
          ...base,
          status: 'unexplained',
          lastEvent,
          message:
            `${bank} PCR ${pcrIndex}: the log replays to ${replayed.toString('hex')}, the quote says ${hex}; ` +
            (lastEvent === undefined
              ? 'the log has no event for this PCR, so it cannot explain a value other than the reset value'
              : `no prefix of its ${events.length} event(s) gives the quoted value: the log is incomplete (events missing after ` +
                `event ${lastEvent}) or a digest in it differs from what was extended`),
        });
      }
    }
  }
  return explanations;
}
