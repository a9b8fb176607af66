import { decodeResponseCode, RETRYABLE_CODES } from './response-codes';
import { TpmClient } from './tpm-client';
import { TpmError } from './tpm-errors';
import type { TpmTransport } from './transport';

/**
 * Response-code decoding (Part 2 §6.6.3: format one when bit 7 is set; bit 6 then means "parameter
 * N", else bit 11 means "session N" and otherwise "handle N", N in bits 8-11) and the client's
 * retry of warnings that ask for it. Codes are ones swtpm answers in the suites.
 */
const hex = (code: number) => `0x${code.toString(16).padStart(3, '0')}`;

describe('TPM_RC decoding', () => {
  it.each(([
    [0x99d, 'TPM_RC_POLICY_FAIL', { kind: 'session', index: 1 }],
    [0xa9d, 'TPM_RC_POLICY_FAIL', { kind: 'session', index: 2 }],
    [0x98e, 'TPM_RC_AUTH_FAIL', { kind: 'session', index: 1 }],
    [0x9a2, 'TPM_RC_BAD_AUTH', { kind: 'session', index: 1 }],
    // 0x1df is TPM_RC_INTEGRITY + TPM_RC_P + TPM_RC_1: bit 6 is set, so parameter 1, not handle 1.
    [0x1df, 'TPM_RC_INTEGRITY', { kind: 'parameter', index: 1 }],
    [0x19f, 'TPM_RC_INTEGRITY', { kind: 'handle', index: 1 }],
    // Likewise 0x2d2 is TPM_RC_SCHEME on parameter 2; on handle 2 it would be 0x292.
    [0x2d2, 'TPM_RC_SCHEME', { kind: 'parameter', index: 2 }],
    [0x292, 'TPM_RC_SCHEME', { kind: 'handle', index: 2 }],
    [0x184, 'TPM_RC_VALUE', { kind: 'handle', index: 1 }],
    [0x18b, 'TPM_RC_HANDLE', { kind: 'handle', index: 1 }],
    [0x1cb, 'TPM_RC_HANDLE', { kind: 'parameter', index: 1 }],
    [0x08b, 'TPM_RC_HANDLE', undefined],
  ] as const).map(([code, name, position]) => ({ hex: hex(code), code, name, position })))('$hex is $name at $position', ({ code, name, position }) => {
    const rc = decodeResponseCode(code);
    expect(rc).toMatchObject({ code, name, warning: false });
    expect(rc.position).toEqual(position);
  });

  it.each(([
    [0x902, 'TPM_RC_OBJECT_MEMORY', true],
    [0x922, 'TPM_RC_RETRY', true],
    [0x910, 'TPM_RC_REFERENCE_H0', true],
    [0x918, 'TPM_RC_REFERENCE_S0', true],
    [0x101, 'TPM_RC_FAILURE', false],
    [0x100, 'TPM_RC_INITIALIZE', false],
    [0x143, 'TPM_RC_COMMAND_CODE', false],
  ] as const).map(([code, name, warning]) => ({ hex: hex(code), code, name, warning })))('$hex is $name (warning: $warning), with no position', ({ code, name, warning }) => {
    const rc = decodeResponseCode(code);
    expect(rc).toMatchObject({ code, base: code, name, warning });
    expect(rc.position).toBeUndefined();
  });

  it('names vendor, TPM 1.2 and unassigned codes without inventing a meaning', () => {
    expect(decodeResponseCode(0x500).name).toBe('TPM_RC_VENDOR_0x500');
    expect(decodeResponseCode(0x01e)).toMatchObject({ name: 'TPM_RC_UNKNOWN_0x01e', description: 'a TPM 1.2 response code' });
    expect(decodeResponseCode(0x1ff).name).toBe('TPM_RC_UNKNOWN_0x0bf');
  });

  it('TpmError says command, code and position, and is() ignores the position bits', () => {
    const error = new TpmError('TPM2_Unseal', 0x99d);
    expect(error.message).toBe('TPM2_Unseal failed: TPM_RC_POLICY_FAIL (0x99d) on session 1: a policy check failed');
    expect(error.is('TPM_RC_POLICY_FAIL')).toBe(true);
    expect(error.rc.base).toBe(0x09d);
  });
});

/** Answers each command with the next response header code in `codes` (0 = success, no parameters). */
class ScriptedTransport implements TpmTransport {
  readonly description = 'scripted';
  readonly commands: Buffer[] = [];

  constructor(private readonly codes: number[]) {}

  async transmit(command: Buffer): Promise<Buffer> {
    this.commands.push(command);
    const code = this.codes.shift();
    if (code === undefined) {
      throw new Error('no scripted answer left');
    }
    const response = Buffer.alloc(10);
    response.writeUInt16BE(0x8001, 0);
    response.writeUInt32BE(10, 2);
    response.writeUInt32BE(code, 6);
    return response;
  }

  async close(): Promise<void> {}
}

describe('TpmClient retries', () => {
  const GET_RANDOM = { code: 0x17b, parameters: Buffer.from([0, 8]) };

  it('re-sends the same bytes after TPM_RC_RETRY twice, backing off, then succeeds', async () => {
    const transport = new ScriptedTransport([0x922, 0x922, 0]);
    const delays: number[] = [];
    const client = new TpmClient(transport, { retryDelayMs: 5, sleep: async (ms) => void delays.push(ms) });
    const response = await client.execute(GET_RANDOM);
    response.parameters.end();
    expect(transport.commands).toHaveLength(3);
    expect(transport.commands[1]).toEqual(transport.commands[0]);
    expect(transport.commands[2]).toEqual(transport.commands[0]);
    expect(delays).toEqual([5, 10]);
  });

  it.each([['0x908', 0x908], ['0x90a', 0x90a]])('retries %s (YIELDED, TESTING) as well', async (_hex, code) => {
    const transport = new ScriptedTransport([code, 0]);
    await new TpmClient(transport, { sleep: async () => undefined }).execute(GET_RANDOM);
    expect(transport.commands).toHaveLength(2);
    expect(RETRYABLE_CODES.has(code)).toBe(true);
  });

  it.each([['0x99d', 0x99d], ['0x902', 0x902], ['0x101', 0x101], ['0x921', 0x921]])('throws %s at once, without retrying', async (_hex, code) => {
    const transport = new ScriptedTransport([code, 0]);
    const sleep = jest.fn(async () => undefined);
    await expect(new TpmClient(transport, { sleep }).execute(GET_RANDOM)).rejects.toEqual(new TpmError('TPM2_GetRandom', code));
    expect(transport.commands).toHaveLength(1);
    expect(sleep).not.toHaveBeenCalled();
  });

  it('gives up after its retry budget with the TPM_RC_RETRY error', async () => {
    const transport = new ScriptedTransport([0x922, 0x922, 0x922, 0]);
    const error = await new TpmClient(transport, { retries: 2, sleep: async () => undefined }).execute(GET_RANDOM).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TpmError);
    expect((error as TpmError).rc.name).toBe('TPM_RC_RETRY');
    expect(transport.commands).toHaveLength(3);
  });
});
