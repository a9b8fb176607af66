import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_CC } from '../constants';
import { FakeTpm } from '../testing/fake-response';
import { passwordAuth, policyAuth } from './session-auth';
import { marshalCommand, TpmClient, unmarshalResponse } from './tpm-client';
import { TpmError } from './tpm-errors';

describe('marshalCommand (Part 1 §18.2)', () => {
  it('a command without sessions: TPM_ST_NO_SESSIONS, size, code, parameters', () => {
    expect(marshalCommand({ code: TPM_CC.TPM_CC_GetRandom, parameters: Buffer.from('0020', 'hex') }).toString('hex')).toBe('8001' + '0000000c' + '0000017b' + '0020');
    expect(marshalCommand({ code: TPM_CC.TPM_CC_ReadPublic, handles: [0x81010001] }).toString('hex')).toBe('8001' + '0000000e' + '00000173' + '81010001');
  });

  it('handles, then the authorization area with its size, then the parameters (TPM2_NV_Read of an EK certificate)', () => {
    const command = marshalCommand({
      code: TPM_CC.TPM_CC_NV_Read,
      handles: [0x01c00002, 0x01c00002],
      sessions: [passwordAuth()],
      parameters: Buffer.from('03f80000', 'hex'),
    });
    // Captured from the client reading swtpm's RSA EK certificate (1016 bytes), which swtpm answered.
    expect(command.toString('hex')).toBe('8002' + '00000023' + '0000014e' + '01c00002' + '01c00002' + '00000009' + '40000009' + '0000' + '00' + '0000' + '03f80000');
  });

  it('sizes each session by its nonce and hmac', () => {
    const command = marshalCommand({
      code: TPM_CC.TPM_CC_Quote,
      handles: [0x80000000],
      sessions: [{ ...policyAuth(0x03000000, true), nonce: Buffer.from('aabb', 'hex') }, passwordAuth(Buffer.from('pw'))],
    });
    expect(command.toString('hex')).toBe(
      '8002' + '00000028' + '00000158' + '80000000' + '00000016' + ('03000000' + '0002aabb' + '01' + '0000') + ('40000009' + '0000' + '00' + '00027077'),
    );
  });
});

describe('unmarshalResponse (Part 1 §18.4)', () => {
  const nvRead = { code: TPM_CC.TPM_CC_NV_Read, handles: [0x01c00002, 0x01c00002], sessions: [passwordAuth()] };

  it('splits handles, parameters and session acknowledgements', () => {
    const response = Buffer.from('8002' + '0000001d' + '00000000' + '80000001' + '00000004' + '0002cafe' + '0001aa' + '01' + '0000', 'hex');
    const { handles, parameters, sessions } = unmarshalResponse({ ...nvRead, responseHandles: 1 }, response);
    expect(handles).toEqual([0x80000001]);
    expect(parameters.tpm2b('data').toString('hex')).toBe('cafe');
    parameters.end();
    expect(sessions).toEqual([{ nonce: Buffer.from('aa', 'hex'), sessionAttributes: 1, hmac: Buffer.alloc(0) }]);
  });

  it('gives the command a reader over exactly its parameters, named after the command', () => {
    const { parameters } = unmarshalResponse(nvRead, Buffer.from('8002' + '00000019' + '00000000' + '00000002' + 'cafe' + '0000' + '00' + '0000', 'hex'));
    expect(parameters.u16('data')).toBe(0xcafe);
    expect(() => parameters.u8('beyond')).toThrow(new TpmParseError('TPM2_NV_Read parameters', 'beyond', 2, 'needs 1 byte(s), 0 left'));
  });

  it('refuses a parameterSize beyond the response, and bytes after the session area', () => {
    expect(() => unmarshalResponse(nvRead, Buffer.from('8002' + '00000014' + '00000000' + '00000009' + 'cafe', 'hex'))).toThrow(
      new TpmParseError('TPM2_NV_Read response', 'parameters', 14, 'needs 9 byte(s), 2 left'),
    );
    expect(() => unmarshalResponse(nvRead, Buffer.from('8002' + '00000014' + '00000000' + '00000000' + '0000' + '00' + '0000' + 'ff', 'hex'))).toThrow(
      new TpmParseError('TPM2_NV_Read response', '(end)', 19, '1 trailing byte(s)'),
    );
  });

  it('refuses a tag that is not a response tag', () => {
    expect(() => unmarshalResponse({ code: TPM_CC.TPM_CC_GetRandom }, Buffer.from('c4c40000000a00000000', 'hex'))).toThrow(
      new TpmParseError('TPM2_GetRandom response', 'tag', 0, '0xc4c4 is not a response tag'),
    );
  });
});

describe('TpmClient.execute', () => {
  const TPM_RC_RETRY = 0x922;
  const TPM_RC_YIELDED = 0x908;

  it('re-sends a command the TPM asks to retry, with doubling delays, then returns its answer', async () => {
    const codes = [TPM_RC_RETRY, TPM_RC_YIELDED, 0];
    const tpm = new FakeTpm(() => ({ rc: codes.shift(), parameters: Buffer.from('0002abcd', 'hex') }));
    const slept: number[] = [];
    const client = new TpmClient(tpm, { retryDelayMs: 5, sleep: async (ms) => void slept.push(ms) });
    const response = await client.execute({ code: TPM_CC.TPM_CC_GetRandom, parameters: Buffer.from('0002', 'hex') });
    expect(response.parameters.tpm2b('randomBytes').toString('hex')).toBe('abcd');
    expect(slept).toEqual([5, 10]);
    // The same bytes each time.
    expect(tpm.sent.map((c) => c.toString('hex'))).toEqual(Array(3).fill('80010000000c0000017b0002'));
  });

  it('gives up after the configured retries with the TPM\'s code', async () => {
    const tpm = new FakeTpm(() => ({ rc: TPM_RC_RETRY }));
    const client = new TpmClient(tpm, { retries: 2, sleep: async () => undefined });
    const error = await client.execute({ code: TPM_CC.TPM_CC_GetRandom, parameters: Buffer.from('0002', 'hex') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TpmError);
    expect(error).toMatchObject({ command: 'TPM2_GetRandom', responseCode: TPM_RC_RETRY });
    expect(tpm.sent).toHaveLength(3);
  });

  it('refuses an answer shorter than a response header as a transport protocol error', async () => {
    const client = new TpmClient({ description: 'short', transmit: async () => Buffer.from('8001', 'hex'), close: async () => undefined });
    await expect(client.execute({ code: TPM_CC.TPM_CC_GetRandom })).rejects.toMatchObject({ name: 'TpmTransportError', problem: 'protocol', message: 'short: response of 2 bytes' });
  });
});
