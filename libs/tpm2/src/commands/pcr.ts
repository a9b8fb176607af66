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

function readDigests(r: TpmReader): Buffer[] {
  const count = r.u32('pcrValues.count');
  if (count > MAX_DIGESTS) {
    throw r.error('pcrValues.count', `${count} digests exceeds the maximum of ${MAX_DIGESTS}`);
  }
  return Array.from({ length: count }, (_, i) => r.tpm2b(`pcrValues[${i}]`, 64));
}

/** One PCR_Read round: the counter, and the PCRs the TPM chose to answer (pcrSelectionOut) with their values. */
async function pcrReadRound(client: TpmClient, selection: TPML_PCR_SELECTION): Promise<{ updateCounter: number; read: { hash: number; pcr: number; digest: Buffer }[] }> {
  const response = await client.execute({ code: TPM_CC.TPM_CC_PCR_Read, parameters: marshal((w) => writePcrSelection(w, selection)) });
  const r = response.parameters;
  const updateCounter = r.u32('pcrUpdateCounter');
  const out = readPcrSelection(r);
  const digests = readDigests(r);
  r.end();
  const named = out.reduce((n, bank) => n + bank.pcrs.length, 0);
  if (named !== digests.length) {
    throw new TpmAnswerError('TPM2_PCR_Read', `pcrSelectionOut names ${named} PCRs but ${digests.length} digests came back`);
  }
  let i = 0;
  return { updateCounter, read: out.flatMap((bank) => bank.pcrs.map((pcr) => ({ hash: bank.hash, pcr, digest: digests[i++]! }))) };
}

/**
 * TPM2_PCR_Read (Part 3 §22.4) of a whole selection. The TPM returns at most 8 digests per call and
 * says in pcrSelectionOut which ones; the rest is asked again. All rounds must see the same
 * pcrUpdateCounter, or the values could mix two PCR states, so a change restarts the read. Values
 * come in selection order: banks in list order, PCRs ascending (the q.pcrs / quote order).
 */
export async function pcrRead(client: TpmClient, selection: TPML_PCR_SELECTION): Promise<{ updateCounter: number; values: Buffer[] }> {
  if (new Set(selection.map((b) => b.hash)).size !== selection.length) {
    throw new RangeError(`PCR selection ${formatPcrSelection(selection)} names a bank twice`);
  }
  for (let attempt = 0; attempt <= MAX_RESTARTS; attempt += 1) {
    // values[b][k] is the value of selection[b].pcrs[k].
    const values = selection.map((bank) => new Array<Buffer | undefined>(bank.pcrs.length).fill(undefined));
    let counter: number | undefined;
    let changed = false;
    let left = selection;
    // At least one round, so an empty selection still reports the update counter.
    do {
      const round = await pcrReadRound(client, left);
      if (counter !== undefined && round.updateCounter !== counter) {
        changed = true;
        break;
      }
      counter = round.updateCounter;
      if (round.read.length === 0 && left.length > 0) {
        // Part 3 §22.4.1: PCRs of a bank that is not allocated are silently left out.
        throw new TpmAnswerError('TPM2_PCR_Read', `the TPM returned no value for ${formatPcrSelection(left)} (bank not allocated, or no such PCR?)`);
      }
      for (const { hash, pcr, digest } of round.read) {
        const b = selection.findIndex((bank) => bank.hash === hash);
        const k = b < 0 ? -1 : selection[b]!.pcrs.indexOf(pcr);
        if (k < 0 || values[b]![k] !== undefined) {
          throw new TpmAnswerError('TPM2_PCR_Read', `the TPM returned ${hashAlgorithm(hash).bank}:${pcr}, which was not asked for`);
        }
        if (digest.length !== hashAlgorithm(hash).size) {
          throw new TpmAnswerError('TPM2_PCR_Read', `${hashAlgorithm(hash).bank}:${pcr} came back with ${digest.length} bytes`);
        }
        values[b]![k] = digest;
      }
      left = selection
        .map((bank, b) => ({ ...bank, pcrs: bank.pcrs.filter((_, k) => values[b]![k] === undefined) }))
        .filter((bank) => bank.pcrs.length > 0);
    } while (left.length > 0);
    if (!changed) {
      return { updateCounter: counter ?? 0, values: values.flat() as Buffer[] };
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
