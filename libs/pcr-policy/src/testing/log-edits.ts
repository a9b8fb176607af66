import { hashAlgorithmByBank, parseEventLog, replayEventLog, type TcgPcrEvent } from '@rackseal/tpm2';
import type { QuotedPcrValues } from '../pcr-policy';

/**
 * Edits of a real event log's bytes for tests (not exported from the index): each changes exactly
 * one thing and recomputes nothing else, so the log no longer replays to the values it used to.
 */

function eventAt(log: Buffer, index: number): TcgPcrEvent {
  const event = parseEventLog(log).events[index];
  if (event === undefined || event.structure !== 'TCG_PCR_EVENT2') {
    throw new Error(`event ${index} is not a TCG_PCR_EVENT2 of this log`);
  }
  return event;
}

/** The log with event `index`'s digest in `bank` XORed with `mask` (PFP §10.2.2: pcrIndex, eventType, count, then the digests). */
export function withDigestChanged(log: Buffer, index: number, bank: string, mask = 0xff): Buffer {
  const event = eventAt(log, index);
  const alg = hashAlgorithmByBank(bank).alg;
  const out = Buffer.from(log);
  let at = event.offset + 12;
  for (const d of event.digests) {
    if (d.hashAlg === alg) {
      out[at + 2] = out[at + 2]! ^ mask;
      return out;
    }
    at += 2 + d.digest.length;
  }
  throw new Error(`event ${index} has no ${bank} digest`);
}

/** The log without event `index`. */
export function withoutEvent(log: Buffer, index: number): Buffer {
  const event = eventAt(log, index);
  return Buffer.concat([log.subarray(0, event.offset), log.subarray(event.offset + event.raw.length)]);
}

/** The log with a copy of event `copied` inserted after event `after`. */
export function withEventCopied(log: Buffer, copied: number, after: number): Buffer {
  const source = eventAt(log, copied);
  const anchor = eventAt(log, after);
  const end = anchor.offset + anchor.raw.length;
  return Buffer.concat([log.subarray(0, end), source.raw, log.subarray(end)]);
}

/** What a TPM that measured exactly this log would quote in `bank`, for `pcrs`. */
export function quoteOf(log: Buffer, bank: string, pcrs: readonly number[]): QuotedPcrValues {
  const replayed = replayEventLog(parseEventLog(log)).banks.get(bank);
  if (replayed === undefined) {
    throw new Error(`the log has no ${bank} bank`);
  }
  const value = (pcr: number): Buffer => {
    const found = replayed.get(pcr);
    if (found === undefined) {
      throw new Error(`the log never extends PCR ${pcr}`);
    }
    return found;
  };
  return { bank, values: new Map(pcrs.map((pcr) => [pcr, value(pcr)])) };
}

export function hexValues(quoted: QuotedPcrValues): Record<number, string> {
  return Object.fromEntries([...quoted.values].map(([pcr, value]) => [pcr, value.toString('hex')]));
}
