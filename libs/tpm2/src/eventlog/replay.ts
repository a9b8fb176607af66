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
  /** PCR 0's initial locality from a StartupLocality event, when one applies (never with an H-CRTM). */
  readonly startupLocality: number | undefined;
  /**
   * Why PCR 0 did not start at zero, when the log says so: an H-CRTM (PCR 0 from 0…04) or a
   * StartupLocality event (pcr0StartOf). The same in every bank.
   */
  readonly pcr0Start: Pcr0Start | undefined;
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
 * quote shows exactly that) and PCR 0, whose last byte is `pcr0Locality` when the log says PCR 0
 * did not start at zero (pcr0StartOf: the StartupLocality, or 4 after an H-CRTM).
 */
export function pcrResetValue(size: number, pcrIndex: number, pcr0Locality: number | undefined): Buffer {
  const value = Buffer.alloc(size, pcrIndex >= 17 && pcrIndex <= 22 ? 0xff : 0x00);
  if (pcrIndex === 0 && pcr0Locality !== undefined) {
    value[size - 1] = pcr0Locality;
  }
  return value;
}

/** What the log says about PCR 0's initial value, in every bank alike. */
export type Pcr0Start =
  /**
   * An H-CRTM measured the platform before TPM2_Startup: _TPM_Hash_End reset PCR 0 to 0…04 and
   * extended the H-CRTM digest, which the log records as EV_EFI_HCRTM_EVENT; TPM2_Startup then leaves
   * PCR 0 alone and ignores its own locality (TPM 2.0 Library Part 1 §34.3 "H-CRTM before
   * TPM2_Startup()"). tpm2-tss's FAPI replays such logs the same way.
   */
  | { readonly source: 'h-crtm'; readonly locality: 4; readonly event: number }
  /** TPM2_Startup came from locality 3 (or another), recorded by a StartupLocality EV_NO_ACTION (PFP §10.4.5.3). */
  | { readonly source: 'startup-locality'; readonly locality: number; readonly event: number };

/** The locality an H-CRTM sequence runs at, and so the last byte of PCR 0 before it is extended. */
const HCRTM_LOCALITY = 4;

/**
 * Reads PCR 0's start from the events on PCR 0 before the first one that is extended:
 * - if that first extended event is an EV_EFI_HCRTM_EVENT, the H-CRTM rule applies (a StartupLocality
 *   event before it notwithstanding: after an H-CRTM, TPM2_Startup does not reset PCR 0);
 * - otherwise the first StartupLocality EV_NO_ACTION before it, if any, gives the locality.
 * An EV_EFI_HCRTM_EVENT after PCR 0 was first extended, or a StartupLocality event after that, cannot
 * describe PCR 0's initial value (an H-CRTM after TPM2_Startup is not possible: _TPM_Hash_End then
 * extends the DRTM PCR 17) and is replayed as the log gives it, i.e. left to not match the quote.
 */
export function pcr0StartOf(log: TcgEventLog): Pcr0Start | undefined {
  let startupLocality: Pcr0Start | undefined;
  for (const event of log.events) {
    if (event.pcrIndex !== 0) {
      continue;
    }
    if (event.eventType === EV.EV_EFI_HCRTM_EVENT) {
      return { source: 'h-crtm', locality: HCRTM_LOCALITY, event: event.index };
    }
    if (event.eventType !== EV.EV_NO_ACTION) {
      return startupLocality;
    }
    if (event.data.kind === 'startup-locality' && startupLocality === undefined) {
      startupLocality = { source: 'startup-locality', locality: event.data.locality, event: event.index };
    }
  }
  return startupLocality;
}

/**
 * Every PCR's history in every bank we can hash: pcr = H(pcr ‖ digest) for each event but
 * EV_NO_ACTION (PFP: never extended), from pcrResetValue. Linear in the log.
 */
export function pcrHistories(log: TcgEventLog): Map<string, Map<number, PcrHistory>> {
  const pcr0Locality = pcr0StartOf(log)?.locality;
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
        pcr = { initial: pcrResetValue(size, event.pcrIndex, pcr0Locality), steps: [] };
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
  const pcr0Start = pcr0StartOf(log);
  return {
    banks,
    events: log.events.length,
    extended: log.events.length - noAction,
    noAction,
    startupLocality: pcr0Start?.source === 'startup-locality' ? pcr0Start.locality : undefined,
    pcr0Start,
    unsupportedAlgorithms: log.algorithms.filter((alg) => !isHashAlgorithm(alg)),
  };
}
