import { TpmParseError } from '../codec/tpm-parse-error';
import { marshal } from '../codec/tpm-writer';
import { TPM_ALG_ID, TPM_RH } from '../constants';
import { passwordAuth } from '../client/session-auth';
import { TpmClient } from '../client/tpm-client';
import { FakeTpm } from '../testing/fake-response';
import { parsePcrSelection } from '../structures/tpml-pcr-selection';
import {
  tpm2PolicyAuthorize,
  tpm2PolicyGetDigest,
  tpm2PolicyOR,
  tpm2PolicyPCR,
  tpm2PolicySecret,
  tpm2StartAuthSession,
  TPM_SE,
} from './policy-session';
import { nullTicket, TPM_ST_TICKET } from './tickets';


const hex = (b: Buffer) => b.toString('hex');

describe('session commands (Part 3 §11.1, §23)', () => {
  it('TPM2_StartAuthSession: tpmKey = bind = TPM_RH_NULL, empty salt, symmetric NULL, authHash; answers handle and nonceTPM', async () => {
    const nonceTPM = Buffer.alloc(32, 9);
    const tpm = new FakeTpm(() => ({ handles: [0x03000000], parameters: marshal((w) => w.tpm2b(nonceTPM)) }));
    const nonceCaller = Buffer.alloc(16, 1);
    const session = await tpm2StartAuthSession(new TpmClient(tpm), TPM_SE.TPM_SE_POLICY, TPM_ALG_ID.TPM_ALG_SHA384, nonceCaller);
    expect(hex(tpm.sent[0]!)).toBe('8001' + '0000002b' + '00000176' + '40000007' + '40000007' + '0010' + hex(nonceCaller) + '0000' + '01' + '0010' + '000c');
    expect(session).toEqual({ sessionHandle: 0x03000000, nonceTPM, authHash: TPM_ALG_ID.TPM_ALG_SHA384 });
  });

  it('refuses a nonceCaller the TPM would refuse (shorter than 16 or longer than the digest) without sending anything', async () => {
    const tpm = new FakeTpm(() => ({}));
    await expect(tpm2StartAuthSession(new TpmClient(tpm), TPM_SE.TPM_SE_POLICY, TPM_ALG_ID.TPM_ALG_SHA256, Buffer.alloc(15))).rejects.toThrow(RangeError);
    await expect(tpm2StartAuthSession(new TpmClient(tpm), TPM_SE.TPM_SE_TRIAL, TPM_ALG_ID.TPM_ALG_SHA256, Buffer.alloc(33))).rejects.toThrow(RangeError);
    expect(tpm.sent).toHaveLength(0);
  });

  it('a StartAuthSession answer that does not parse still flushes the session it opened', async () => {
    const tpm = new FakeTpm((code) => (code === 0x176 ? { handles: [0x03000001], parameters: Buffer.from('0020', 'hex') } : {}));
    await expect(tpm2StartAuthSession(new TpmClient(tpm), TPM_SE.TPM_SE_POLICY)).rejects.toBeInstanceOf(TpmParseError);
    expect(tpm.sent.map((c) => c.readUInt32BE(6))).toEqual([0x176, 0x165]);
    expect(hex(tpm.sent[1]!)).toBe('80010000000e0000016503000001');
  });

  it('TPM2_PolicySecret: authHandle with its password session, the policy session as second handle, empty nonce/cpHash/policyRef, expiration 0', async () => {
    const ticket = marshal((w) => w.u16(TPM_ST_TICKET.TPM_ST_AUTH_SECRET).u32(TPM_RH.TPM_RH_NULL).u16(0));
    const tpm = new FakeTpm(() => ({ parameters: Buffer.concat([Buffer.from('0000', 'hex'), ticket]) }));
    const result = await tpm2PolicySecret(new TpmClient(tpm), TPM_RH.TPM_RH_ENDORSEMENT, passwordAuth(), 0x03000000);
    expect(hex(tpm.sent[0]!)).toBe('8002' + '00000029' + '00000151' + '4000000b' + '03000000' + '00000009' + '40000009000000' + '0000' + '0000' + '0000' + '0000' + '00000000');
    expect(result.policyTicket).toEqual(nullTicket(TPM_ST_TICKET.TPM_ST_AUTH_SECRET));
  });

  it('TPM2_PolicyPCR with an empty pcrDigest, TPM2_PolicyOR with a TPML_DIGEST, TPM2_PolicyGetDigest', async () => {
    const digest = Buffer.alloc(32, 5);
    const tpm = new FakeTpm((code) => (code === 0x189 ? { parameters: marshal((w) => w.tpm2b(digest)) } : {}));
    const client = new TpmClient(tpm);
    await tpm2PolicyPCR(client, 0x03000000, parsePcrSelection('sha256:0,7'));
    await tpm2PolicyOR(client, 0x03000000, [Buffer.alloc(32, 1), Buffer.alloc(32, 2)]);
    expect((await tpm2PolicyGetDigest(client, 0x03000000)).equals(digest)).toBe(true);
    expect(hex(tpm.sent[0]!)).toBe('8001' + '0000001a' + '0000017f' + '03000000' + '0000' + '00000001' + '000b' + '03' + '810000');
    expect(hex(tpm.sent[1]!.subarray(14, 20))).toBe('00000002' + '0020');
    expect(tpm.sent[1]!.length).toBe(14 + 4 + 2 * 34);
  });

  it('TPM2_PolicyAuthorize marshals approvedPolicy, policyRef, keySign and the TPMT_TK_VERIFIED ticket', async () => {
    const tpm = new FakeTpm(() => ({}));
    await tpm2PolicyAuthorize(new TpmClient(tpm), 0x03000002, {
      approvedPolicy: Buffer.alloc(32, 3),
      policyRef: Buffer.from('ref'),
      keySign: Buffer.alloc(34, 4),
      checkTicket: nullTicket(TPM_ST_TICKET.TPM_ST_VERIFIED),
    });
    const params = tpm.sent[0]!.subarray(14);
    expect(hex(params)).toBe('0020' + '03'.repeat(32) + '0003' + hex(Buffer.from('ref')) + '0022' + '04'.repeat(34) + '8022' + '40000007' + '0000');
  });
});
