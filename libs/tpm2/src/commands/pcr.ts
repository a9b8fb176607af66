import type { TpmReader } from '../codec/tpm-reader';
import { marshal, TpmWriter } from '../codec/tpm-writer';
import { TPM_CC } from '../constants';
import { hashAlgorithm } from '../hash-algorithms';
import { formatPcrSelection, readPcrSelection, writePcrSelection, type TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import type { TPMT_HA } from '../structures/tpmt-signature';
import { passwordAuth } from '../client/session-auth';
import type { TpmClient } from '../client/tpm-client';
import { TpmAnswerError } from './tpm-answer-error';

/** Part 2 §10.9.2 TPML_DIGEST: PCR_Read answers at most 8 digests per call. */
const MAX_DIGESTS = 8;

/**
 * Every PCR change between two PCR_Read rounds bumps pcrUpdateCounter; a read that sees a change
 * starts over. A TPM being extended in a tight loop could starve us, hence a bound.
 */
const MAX_RESTARTS = 8;

/** The digests' field names, built once: a string per digest per call showed in profiles. */
const DIGEST_FIELDS = Array.from({ length: MAX_DIGESTS }, (_, i) => `pcrValues[${i}]`);

function readDigests(r: TpmReader): Buffer[] {
  const count = r.u32('pcrValues.count');
  if (count > MAX_DIGESTS) {
    throw r.error('pcrValues.count', `${count} digests exceeds the maximum of ${MAX_DIGESTS}`);
  }
  const digests: Buffer[] = [];
  for (let i = 0; i < count; i += 1) {
    digests.push(r.tpm2b(DIGEST_FIELDS[i]!, 64));
  }
  return digests;
}

/** One PCR_Read round's answer: the counter, the PCRs the TPM chose to answer (pcrSelectionOut), their values in that order. */
interface PcrReadRound {
  readonly updateCounter: number;
  readonly out: TPML_PCR_SELECTION;
  readonly digests: readonly Buffer[];
}

/** A PCR_Read response's parameters (Part 3 §22.4.2), the whole of them. */
function readRound(r: TpmReader): PcrReadRound {
  const updateCounter = r.u32('pcrUpdateCounter');
  const out = readPcrSelection(r);
  const digests = readDigests(r);
  r.end();
  let named = 0;
  for (const bank of out) {
    named += bank.pcrs.length;
  }
  if (named !== digests.length) {
    throw new TpmAnswerError('TPM2_PCR_Read', `pcrSelectionOut names ${named} PCRs but ${digests.length} digests came back`);
  }
  return { updateCounter, out, digests };
}

/** The index in `selection` of the bank of `hash`, or -1. */
function bankIndex(selection: TPML_PCR_SELECTION, hash: number): number {
  for (let b = 0; b < selection.length; b += 1) {
    if (selection[b]!.hash === hash) {
      return b;
    }
  }
  return -1;
}

/** Where selection[b]'s values start in the values, which are in selection order. */
function bankStart(selection: TPML_PCR_SELECTION, b: number): number {
  let start = 0;
  for (let j = 0; j < b; j += 1) {
    start += selection[j]!.pcrs.length;
  }
  return start;
}

/**
 * Stores one round's digests in `values` (selection order: the value of selection[b].pcrs[k] at
 * bankStart(b) + k) and returns how many it stored. A PCR not asked for, or asked for and already
 * answered, and a digest of the wrong size are refused, in the order the TPM listed them.
 */
function storeRound(selection: TPML_PCR_SELECTION, values: (Buffer | undefined)[], round: PcrReadRound): number {
  let i = 0;
  for (const bank of round.out) {
    const b = bankIndex(selection, bank.hash);
    const start = b < 0 ? -1 : bankStart(selection, b);
    const algorithm = hashAlgorithm(bank.hash);
    for (const pcr of bank.pcrs) {
      const digest = round.digests[i]!;
      i += 1;
      const k = b < 0 ? -1 : selection[b]!.pcrs.indexOf(pcr);
      if (k < 0 || values[start + k] !== undefined) {
        throw new TpmAnswerError('TPM2_PCR_Read', `the TPM returned ${algorithm.bank}:${pcr}, which was not asked for`);
      }
      if (digest.length !== algorithm.size) {
        throw new TpmAnswerError('TPM2_PCR_Read', `${algorithm.bank}:${pcr} came back with ${digest.length} bytes`);
      }
      values[start + k] = digest;
    }
  }
  return i;
}

const NOTHING_LEFT: TPML_PCR_SELECTION = Object.freeze([]);

/** The PCRs of `selection` that have no value yet, banks without any left out. */
function unanswered(selection: TPML_PCR_SELECTION, values: readonly (Buffer | undefined)[]): TPML_PCR_SELECTION {
  return selection
    .map((bank, b) => {
      const start = bankStart(selection, b);
      return { ...bank, pcrs: bank.pcrs.filter((_, k) => values[start + k] === undefined) };
    })
    .filter((bank) => bank.pcrs.length > 0);
}

/**
 * TPM2_PCR_Read (Part 3 §22.4) of a whole selection. The TPM returns at most 8 digests per call and
 * says in pcrSelectionOut which ones; the rest is asked again. All rounds must see the same
 * pcrUpdateCounter, or the values could mix two PCR states, so a change restarts the read. Values
 * come in selection order: banks in list order, PCRs ascending (the q.pcrs / quote order).
 */
export async function pcrRead(client: TpmClient, selection: TPML_PCR_SELECTION): Promise<{ updateCounter: number; values: Buffer[] }> {
  for (let b = 0; b < selection.length; b += 1) {
    // A handful of banks at most: comparing pairs costs less than a Set per call.
    if (bankIndex(selection, selection[b]!.hash) !== b) {
      throw new RangeError(`PCR selection ${formatPcrSelection(selection)} names a bank twice`);
    }
  }
  const wanted = bankStart(selection, selection.length);
  for (let attempt = 0; attempt <= MAX_RESTARTS; attempt += 1) {
    // One flat array in selection order, as returned: per-bank arrays and a flat() at the end
    // cost more than the rest of the bookkeeping together.
    const values: (Buffer | undefined)[] = [];
    for (let v = 0; v < wanted; v += 1) {
      values.push(undefined);
    }
    let counter: number | undefined;
    let changed = false;
    let stored = 0;
    let left = selection;
    // At least one round, so an empty selection still reports the update counter.
    do {
      const response = await client.execute({ code: TPM_CC.TPM_CC_PCR_Read, parameters: marshal((w) => writePcrSelection(w, left)) });
      const round = readRound(response.parameters);
      if (counter !== undefined && round.updateCounter !== counter) {
        changed = true;
        break;
      }
      counter = round.updateCounter;
      if (round.digests.length === 0 && left.length > 0) {
        // Part 3 §22.4.1: PCRs of a bank that is not allocated are silently left out.
        throw new TpmAnswerError('TPM2_PCR_Read', `the TPM returned no value for ${formatPcrSelection(left)} (bank not allocated, or no such PCR?)`);
      }
      stored += storeRound(selection, values, round);
      // Every stored value filled a distinct empty slot, so the count says whether any is left;
      // the selection of what is left is built only for a further round (more than 8 PCRs).
      left = stored === wanted ? NOTHING_LEFT : unanswered(selection, values);
    } while (left.length > 0);
    if (!changed) {
      // Every slot is filled: `stored` reached `wanted`.
      return { updateCounter: counter ?? 0, values: values as Buffer[] };
    }
  }
  throw new TpmAnswerError('TPM2_PCR_Read', `PCRs kept changing during ${MAX_RESTARTS + 1} attempts to read them consistently`);
}

/**
 * TPM2_PCR_Extend (Part 3 §22.2): PCR[bank] = H(PCR[bank] ‖ digest) for each digest given (a
 * TPML_DIGEST_VALUES of TPMT_HA, Part 2 §10.9.6), with
 * the PCR's empty authValue as password (PC Client PCRs 0-15 need none).
 */
export async function pcrExtend(client: TpmClient, pcrIndex: number, digests: readonly TPMT_HA[]): Promise<void> {
  const w = new TpmWriter().u32(digests.length);
  for (const { hashAlg, digest } of digests) {
    const size = hashAlgorithm(hashAlg).size;
    if (digest.length !== size) {
      throw new RangeError(`a ${hashAlgorithm(hashAlg).bank} digest is ${size} bytes, not ${digest.length}`);
    }
    w.u16(hashAlg).bytes(digest);
  }
  const response = await client.execute({
    code: TPM_CC.TPM_CC_PCR_Extend,
    handles: [pcrIndex],
    sessions: [passwordAuth()],
    parameters: w.toBuffer(),
  });
  response.parameters.end();
}
