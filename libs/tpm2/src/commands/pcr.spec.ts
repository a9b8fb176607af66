import { TpmParseError } from '../codec/tpm-parse-error';
import { TpmWriter } from '../codec/tpm-writer';
import { TPM_ALG_ID } from '../constants';
import { TpmClient } from '../client/tpm-client';
import { FakeTpm } from '../testing/fake-response';
import { parsePcrSelection } from '../structures/tpml-pcr-selection';
import { pcrRead } from './pcr';
import { TpmAnswerError } from './tpm-answer-error';

const SHA1 = TPM_ALG_ID.TPM_ALG_SHA1;
const SHA256 = TPM_ALG_ID.TPM_ALG_SHA256;
const SIZES = new Map<number, number>([
  [SHA1, 20],
  [SHA256, 32],
]);

interface Bank {
  readonly hash: number;
  readonly pcrs: readonly number[];
}

/** A value no other (counter, bank, PCR) shares, so a misplaced value shows in the comparison. */
function valueOf(counter: number, hash: number, pcr: number): Buffer {
  const value = Buffer.alloc(SIZES.get(hash) ?? 32, pcr);
  value[0] = counter;
  value[1] = hash;
  return value;
}

/** PCR_Read response parameters (Part 3 §22.4.2): pcrUpdateCounter, pcrSelectionOut (3-byte bitmaps), pcrValues. */
function answer(counter: number, banks: readonly Bank[], digests: readonly Buffer[]): Buffer {
  const w = new TpmWriter().u32(counter).u32(banks.length);
  for (const bank of banks) {
    const bitmap = Buffer.alloc(3);
    bank.pcrs.forEach((pcr) => (bitmap[pcr >> 3]! |= 1 << (pcr & 7)));
    w.u16(bank.hash).u8(3).bytes(bitmap);
  }
  w.u32(digests.length);
  digests.forEach((d) => w.tpm2b(d));
  return w.toBuffer();
}

/** The selection a PCR_Read command asks for, decoded from its bytes (header 10, then TPML_PCR_SELECTION). */
function askedFor(command: Buffer): Bank[] {
  const banks: Bank[] = [];
  let at = 14;
  for (let i = 0; i < command.readUInt32BE(10); i += 1) {
    const size = command[at + 2]!;
    const pcrs: number[] = [];
    for (let pcr = 0; pcr < size * 8; pcr += 1) {
      if ((command[at + 3 + (pcr >> 3)]! >> (pcr & 7)) & 1) {
        pcrs.push(pcr);
      }
    }
    banks.push({ hash: command.readUInt16BE(at), pcrs });
    at += 3 + size;
  }
  return banks;
}

/**
 * A TPM that answers like Part 3 §22.4.1: at most 8 digests, the first ones in bank order and PCR
 * order. `counterAt(n)` is pcrUpdateCounter at the n-th command (0-based).
 */
function pcrTpm(counterAt: (n: number) => number = () => 7): FakeTpm {
  const tpm: FakeTpm = new FakeTpm(() => {
    const counter = counterAt(tpm.sent.length - 1);
    let budget = 8;
    const out = askedFor(tpm.sent[tpm.sent.length - 1]!).map((bank) => {
      const pcrs = bank.pcrs.slice(0, budget);
      budget -= pcrs.length;
      return { hash: bank.hash, pcrs };
    });
    const answered = out.filter((bank) => bank.pcrs.length > 0);
    return { parameters: answer(counter, answered, answered.flatMap((bank) => bank.pcrs.map((pcr) => valueOf(counter, bank.hash, pcr)))) };
  });
  return tpm;
}

const hex = (values: readonly Buffer[]) => values.map((v) => v.toString('hex'));

describe('TPM2_PCR_Read (Part 3 §22.4)', () => {
  it('reads sha256:0-7 in one command, framed as Part 1 §18.2, values in PCR order', async () => {
    const tpm = pcrTpm(() => 42);
    const result = await pcrRead(new TpmClient(tpm), parsePcrSelection('sha256:0,1,2,3,4,5,6,7'));
    // tag NO_SESSIONS, size 20, TPM_CC_PCR_Read, one bank: sha256, 3-byte bitmap with PCRs 0-7.
    expect(tpm.sent.map((c) => c.toString('hex'))).toEqual(['80010000001400000' + '17e' + '00000001' + '000b' + '03' + 'ff0000']);
    expect(result.updateCounter).toBe(42);
    expect(hex(result.values)).toEqual(hex([0, 1, 2, 3, 4, 5, 6, 7].map((pcr) => valueOf(42, SHA256, pcr))));
  });

  it('more than 8 PCRs: a second command asks for the rest only, and values come in selection order', async () => {
    const tpm = pcrTpm();
    const selection = parsePcrSelection('sha1:0,1+sha256:0,1,2,3,4,5,6,7,8,9');
    const result = await pcrRead(new TpmClient(tpm), selection);
    expect(tpm.sent).toHaveLength(2);
    // The first answer held sha1:0,1 and sha256:0-5; the sha1 bank is done and not asked again.
    expect(askedFor(tpm.sent[1]!)).toEqual([{ hash: SHA256, pcrs: [6, 7, 8, 9] }]);
    expect(tpm.sent[1]!.subarray(10).toString('hex')).toBe('00000001' + '000b' + '03' + 'c00300');
    const expected = [valueOf(7, SHA1, 0), valueOf(7, SHA1, 1), ...[0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((pcr) => valueOf(7, SHA256, pcr))];
    expect(hex(result.values)).toEqual(hex(expected));
    expect(result.values[0]).toHaveLength(20);
  });

  it('keeps the caller\'s PCR order within a bank when the selection lists it unsorted', async () => {
    const result = await pcrRead(new TpmClient(pcrTpm()), [{ hash: SHA256, pcrs: [7, 0, 3], sizeofSelect: 3 }]);
    expect(hex(result.values)).toEqual(hex([7, 0, 3].map((pcr) => valueOf(7, SHA256, pcr))));
  });

  it('a pcrUpdateCounter change between rounds restarts the read, so no value mixes two PCR states', async () => {
    // Counter 1 for the first command, 2 from then on: the restarted read sees 2 in both rounds.
    const tpm = pcrTpm((n) => (n === 0 ? 1 : 2));
    const result = await pcrRead(new TpmClient(tpm), parsePcrSelection('sha256:0,1,2,3,4,5,6,7,8,9'));
    expect(tpm.sent).toHaveLength(4);
    expect(result.updateCounter).toBe(2);
    expect(hex(result.values)).toEqual(hex([0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((pcr) => valueOf(2, SHA256, pcr))));
  });

  it('gives up after 9 attempts when the PCRs change between every two rounds', async () => {
    const tpm = pcrTpm((n) => n);
    await expect(pcrRead(new TpmClient(tpm), parsePcrSelection('sha256:0,1,2,3,4,5,6,7,8'))).rejects.toThrow(
      new TpmAnswerError('TPM2_PCR_Read', 'PCRs kept changing during 9 attempts to read them consistently'),
    );
    expect(tpm.sent).toHaveLength(18);
  });

  it('an empty selection still sends one command and reports the counter', async () => {
    const tpm = pcrTpm(() => 5);
    await expect(pcrRead(new TpmClient(tpm), [])).resolves.toEqual({ updateCounter: 5, values: [] });
    expect(tpm.sent).toHaveLength(1);
  });

  it('refuses a selection naming a bank twice before sending anything', async () => {
    const tpm = pcrTpm();
    const twice = [...parsePcrSelection('sha256:0'), ...parsePcrSelection('sha256:1')];
    await expect(pcrRead(new TpmClient(tpm), twice)).rejects.toThrow(new RangeError('PCR selection sha256:0+sha256:1 names a bank twice'));
    expect(tpm.sent).toHaveLength(0);
  });

  describe('answers that do not fit the question are TpmAnswerErrors', () => {
    const refused = async (parameters: Buffer, selection = 'sha256:0,1') => {
      const tpm = new FakeTpm(() => ({ parameters }));
      return pcrRead(new TpmClient(tpm), parsePcrSelection(selection)).then(
        () => undefined,
        (error: unknown) => error,
      );
    };
    const d32 = Buffer.alloc(32, 0x11);

    it.each([
      ['a PCR not asked for', answer(1, [{ hash: SHA256, pcrs: [0, 2] }], [d32, d32]), 'the TPM returned sha256:2, which was not asked for'],
      ['a bank not asked for', answer(1, [{ hash: SHA1, pcrs: [0] }], [Buffer.alloc(20)]), 'the TPM returned sha1:0, which was not asked for'],
      ['a digest of the wrong size', answer(1, [{ hash: SHA256, pcrs: [0, 1] }], [d32, Buffer.alloc(20)]), 'sha256:1 came back with 20 bytes'],
      ['fewer digests than PCRs named', answer(1, [{ hash: SHA256, pcrs: [0, 1] }], [d32]), 'pcrSelectionOut names 2 PCRs but 1 digests came back'],
      ['no value at all (bank not allocated)', answer(1, [], []), 'the TPM returned no value for sha256:0,1 (bank not allocated, or no such PCR?)'],
    ])('%s', async (_, parameters, message) => {
      const error = await refused(parameters);
      expect(error).toBeInstanceOf(TpmAnswerError);
      expect((error as Error).message).toBe(`TPM2_PCR_Read: ${message}`);
    });

    it('the same PCR answered again in a later round', async () => {
      // Asked for 9 PCRs, the TPM answers PCR 0 twice: the second time it was no longer asked for.
      let n = 0;
      const tpm = new FakeTpm(() => {
        n += 1;
        const pcrs = n === 1 ? [0, 1, 2, 3, 4, 5, 6, 7] : [0];
        return { parameters: answer(1, [{ hash: SHA256, pcrs }], pcrs.map(() => d32)) };
      });
      await expect(pcrRead(new TpmClient(tpm), parsePcrSelection('sha256:0,1,2,3,4,5,6,7,8'))).rejects.toThrow('the TPM returned sha256:0, which was not asked for');
    });
  });

  describe('malformed pcrValues are TpmParseErrors naming the field and offset', () => {
    const parseError = async (parameters: Buffer) => {
      const tpm = new FakeTpm(() => ({ parameters }));
      const error = await pcrRead(new TpmClient(tpm), parsePcrSelection('sha256:0,1,2,3,4,5,6,7')).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TpmParseError);
      return error as TpmParseError;
    };
    const eight = [0, 1, 2, 3, 4, 5, 6, 7];
    const full = answer(1, [{ hash: SHA256, pcrs: eight }], eight.map((pcr) => valueOf(1, SHA256, pcr)));

    it('a digest cut short: pcrValues[3] (counter 4 + selection 10 + count 4 + three digests of 34 + size 2 = offset 122)', async () => {
      expect(await parseError(full.subarray(0, 132))).toMatchObject({ structure: 'TPM2_PCR_Read parameters', field: 'pcrValues[3]', offset: 122, reason: 'needs 32 byte(s), 10 left' });
    });

    it('a digest size cut short: pcrValues[7].size', async () => {
      expect(await parseError(full.subarray(0, 18 + 7 * 34 + 1))).toMatchObject({ field: 'pcrValues[7].size', offset: 18 + 7 * 34, reason: 'needs 2 byte(s), 1 left' });
    });

    it('a digest above 64 bytes: pcrValues[0].size', async () => {
      const big = Buffer.concat([full.subarray(0, 18), Buffer.from([0, 65]), Buffer.alloc(65)]);
      expect(await parseError(big)).toMatchObject({ field: 'pcrValues[0].size', offset: 18, reason: '65 exceeds the maximum of 64' });
    });

    it('more than 8 digests: pcrValues.count', async () => {
      const nine = Buffer.from(full);
      nine.writeUInt32BE(9, 14);
      expect(await parseError(nine)).toMatchObject({ field: 'pcrValues.count', reason: '9 digests exceeds the maximum of 8' });
    });

    it('trailing bytes', async () => {
      expect(await parseError(Buffer.concat([full, Buffer.from([0])]))).toMatchObject({ field: '(end)', offset: full.length, reason: '1 trailing byte(s)' });
    });
  });
});
