import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_ALG_ID } from '../constants';
import {
  marshalTpm2bSensitive,
  marshalTpmtSensitive,
  MAX_SYM_DATA,
  unmarshalTpm2bSensitive,
  unmarshalTpmtSensitive,
} from './tpmt-sensitive';

// A sealed-data sensitive area (keyedHash, Part 2 §12.3.2.4): 0008 ‖ authValue 0000 ‖ seedValue (32) ‖ data.
const SEED = 'a5'.repeat(32);
const SEALED = Buffer.from(`0008` + `0000` + `0020${SEED}` + `0005${Buffer.from('hello').toString('hex')}`, 'hex');

describe('TPMT_SENSITIVE (Part 2 §12.3.2.4)', () => {
  it('parses a keyedHash sensitive area and marshals it back byte for byte', () => {
    const sensitive = unmarshalTpmtSensitive(SEALED);
    expect(sensitive).toEqual({
      sensitiveType: TPM_ALG_ID.TPM_ALG_KEYEDHASH,
      authValue: Buffer.alloc(0),
      seedValue: Buffer.from(SEED, 'hex'),
      sensitive: Buffer.from('hello'),
    });
    expect(marshalTpmtSensitive(sensitive).equals(SEALED)).toBe(true);
  });

  it('round-trips through TPM2B_SENSITIVE, whose size must cover it exactly', () => {
    const sized = marshalTpm2bSensitive(unmarshalTpmtSensitive(SEALED));
    expect(sized.readUInt16BE(0)).toBe(SEALED.length);
    expect(marshalTpmtSensitive(unmarshalTpm2bSensitive(sized)).equals(SEALED)).toBe(true);
    expect(() => unmarshalTpm2bSensitive(Buffer.concat([sized, Buffer.alloc(1)]))).toThrow(/1 trailing byte/);
  });

  it('bounds keyedHash data by MAX_SYM_DATA (128), naming the field and offset', () => {
    const tooBig = Buffer.concat([SEALED.subarray(0, 38), Buffer.from([0, MAX_SYM_DATA + 1]), Buffer.alloc(MAX_SYM_DATA + 1)]);
    expect(() => unmarshalTpmtSensitive(tooBig)).toThrow(new TpmParseError('TPMT_SENSITIVE', 'sensitive.size', 38, '129 exceeds the maximum of 128'));
    const exact = Buffer.concat([SEALED.subarray(0, 38), Buffer.from([0, MAX_SYM_DATA]), Buffer.alloc(MAX_SYM_DATA)]);
    expect(unmarshalTpmtSensitive(exact).sensitive).toHaveLength(128);
  });

  it('refuses an unknown sensitiveType and truncation with TpmParseError', () => {
    expect(() => unmarshalTpmtSensitive(Buffer.from('0099', 'hex'))).toThrow(/sensitiveType at offset 0: 0x0099 is not a public object type/);
    expect(() => unmarshalTpmtSensitive(SEALED.subarray(0, SEALED.length - 1))).toThrow(TpmParseError);
  });
});
