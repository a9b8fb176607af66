import { concatStagingBatches, toStagingBatch } from './staging-batch';
import type { RowResult } from './row-validator';

const valid = (line: number, ekCert: Buffer | null): RowResult => ({
  ok: true,
  row: { line, serial: `SN${line}`, assetTag: null, hostname: `h${line}`, group: 'g', ekPubHash: 'a'.repeat(64), ekCert, ekCertFingerprint: ekCert === null ? null : 'b'.repeat(64) },
});
const refused: RowResult = { ok: false, line: 3, reason: 'bad-cert', message: 'ek_cert: truncated', serial: 'SN3' };

describe('StagingBatch', () => {
  it('puts each row in every column at the same index: certificates as base64, problems only on refused rows', () => {
    const batch = toStagingBatch([valid(1, Buffer.from([0x30, 0x03, 0x02, 0x01, 0x07])), refused, valid(4, null)]);
    expect(batch).toEqual({
      line: [1, 3, 4],
      serial: ['SN1', 'SN3', 'SN4'],
      assetTag: [null, null, null],
      hostname: ['h1', null, 'h4'],
      group: ['g', null, 'g'],
      ekPubHash: ['a'.repeat(64), null, 'a'.repeat(64)],
      ekCertBase64: ['MAMCAQc=', null, null],
      ekCertFingerprint: ['b'.repeat(64), null, null],
      problem: [null, 'bad-cert', null],
      message: [null, 'ek_cert: truncated', null],
    });
  });

  it('concatenates worker slices in order, column by column', () => {
    const whole = toStagingBatch([valid(1, null), refused, valid(4, null)]);
    const joined = concatStagingBatches([toStagingBatch([valid(1, null)]), toStagingBatch([refused, valid(4, null)])]);
    expect(joined).toEqual(whole);
    expect(concatStagingBatches([whole])).toBe(whole);
  });
});
