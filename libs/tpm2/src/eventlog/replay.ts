import { digest, hashAlgorithm, isHashAlgorithm } from '../hash-algorithms';
import { PC_CLIENT_PCR_COUNT, type TcgEventLog } from './event-log';
import { EV } from './event-types';

/** Bank name (`sha256`, as tpm2-tools spells it) → PCR index → value. */
export type PcrBanks = ReadonlyMap<string, ReadonlyMap<number, Buffer>>;

export interface EventLogReplay {
  /**
   * Every bank the log carries and this library can hash, in the log's order; in each, the PCRs at
   * least one event extends, ascending (tpm2_eventlog prints the same set). A bank can be empty.
   */
  readonly banks: PcrBanks;
  /** Records in the log, the Spec ID header and EV_NO_ACTION events included (tpm2_eventlog's EventNum count). */
  readonly events: number;
  /** Events extended into the PCRs (all but EV_NO_ACTION). */
  readonly extended: number;
  /** EV_NO_ACTION records, the Spec ID header included. */
  readonly noAction: number;
  /** PCR 0's initial locality from a StartupLocality event, when one applies. */
  readonly startupLocality: number | undefined;
  /** Banks declared by the Spec ID event that this library cannot hash (TPM_ALG_ID values). */
  readonly unsupportedAlgorithms: readonly number[];
}

/** One PCR of one bank, step by step: the value before any event, then after each event. */
export interface PcrHistory {
  readonly initial: Buffer;
  readonly steps: readonly { readonly event: number; readonly value: Buffer }[];
}

/**
 * The value a PCR holds after TPM2_Startup(CLEAR) on a PC Client TPM, before any extend: all zeros,
 * except PCRs 17–22 (the DRTM PCRs, all ones until a dynamic launch resets them — the GCP Shielded VM
 * quote shows exactly that) and PCR 0, whose last byte is the locality TPM2_Startup was sent from
 * (TPM2-BRIEF §5; PFP §10.4.5.3 StartupLocality event).
 */
export function pcrResetValue(size: number, pcrIndex: number, startupLocality: number | undefined): Buffer {
  const value = Buffer.alloc(size, pcrIndex >= 17 && pcrIndex <= 22 ? 0xff : 0x00);
  if (pcrIndex === 0 && startupLocality !== undefined) {
    value[size - 1] = startupLocality;
  }
  return value;
}

/**
 * The StartupLocality event that sets PCR 0's initial value: the first EV_NO_ACTION on PCR 0 carrying
 * "StartupLocality\0", provided it comes before any event extends PCR 0 (afterwards PCR 0 no longer
 * holds its initial value, so the event cannot describe it and is ignored).
 */
export function startupLocalityOf(log: TcgEventLog): number | undefined {
  for (const event of log.events) {
    if (event.pcrIndex !== 0) {
      continue;
    }
    if (event.eventType !== EV.EV_NO_ACTION) {
      return undefined;
    }
    if (event.data.kind === 'startup-locality') {
      return event.data.locality;
    }
  }
  return undefined;
}

/**
 * Every PCR's history in every bank we can hash: pcr = H(pcr ‖ digest) for each event but
 * EV_NO_ACTION (PFP: never extended), from pcrResetValue. Linear in the log.
 */
export function pcrHistories(log: TcgEventLog): Map<string, Map<number, PcrHistory>> {
  const startupLocality = startupLocalityOf(log);
  const histories = new Map<string, Map<number, { initial: Buffer; steps: { event: number; value: Buffer }[] }>>();
  for (const alg of log.algorithms.filter(isHashAlgorithm)) {
    histories.set(hashAlgorithm(alg).bank, new Map());
  }
  for (const event of log.events) {
    if (event.eventType === EV.EV_NO_ACTION) {
      continue;
    }
    for (const d of event.digests) {
      if (!isHashAlgorithm(d.hashAlg)) {
        continue;
      }
      const { bank, size } = hashAlgorithm(d.hashAlg);
      const pcrs = histories.get(bank)!;
      let pcr = pcrs.get(event.pcrIndex);
      if (pcr === undefined) {
        pcr = { initial: pcrResetValue(size, event.pcrIndex, startupLocality), steps: [] };
        pcrs.set(event.pcrIndex, pcr);
      }
      const previous = pcr.steps.at(-1)?.value ?? pcr.initial;
      pcr.steps.push({ event: event.index, value: digest(d.hashAlg, previous, d.digest) });
    }
  }
  return histories;
}

/** Replays the log: the PCR values a TPM that measured exactly these events would hold. */
export function replayEventLog(log: TcgEventLog): EventLogReplay {
  const banks = new Map<string, Map<number, Buffer>>();
  for (const [bank, pcrs] of pcrHistories(log)) {
    const values = new Map<number, Buffer>();
    for (let pcr = 0; pcr < PC_CLIENT_PCR_COUNT; pcr += 1) {
      const history = pcrs.get(pcr);
      if (history !== undefined) {
        values.set(pcr, history.steps.at(-1)!.value);
      }
    }
    banks.set(bank, values);
  }
  const noAction = log.events.filter((e) => e.eventType === EV.EV_NO_ACTION).length;
  return {
    banks,
    events: log.events.length,
    extended: log.events.length - noAction,
    noAction,
    startupLocality: startupLocalityOf(log),
    unsupportedAlgorithms: log.algorithms.filter((alg) => !isHashAlgorithm(alg)),
  };
}
