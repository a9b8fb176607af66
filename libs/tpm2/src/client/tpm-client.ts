import { TpmReader } from '../codec/tpm-reader';
import { TpmWriter } from '../codec/tpm-writer';
import { TPM_CC, TPM_ST } from '../constants';
import { RETRYABLE_CODES } from './response-codes';
import type { TPMS_AUTH_COMMAND, TPMS_AUTH_RESPONSE } from './session-auth';
import { TpmError, TpmTransportError } from './tpm-errors';
import type { TpmTransport } from './transport';

/** One command as Part 1 §18.2 lays it out: code, handle area, authorization area, parameters. */
export interface TpmCommand {
  readonly code: number;
  readonly handles?: readonly number[];
  /** Present: tag TPM_ST_SESSIONS and an authorization area; absent: TPM_ST_NO_SESSIONS. */
  readonly sessions?: readonly TPMS_AUTH_COMMAND[];
  readonly parameters?: Buffer;
  /** How many handles the response carries before its parameters (e.g. 1 for CreatePrimary, Load). */
  readonly responseHandles?: number;
}

export interface TpmResponse {
  readonly handles: readonly number[];
  /** A reader over exactly the response parameters; callers must consume them all (`end()`). */
  readonly parameters: TpmReader;
  readonly sessions: readonly TPMS_AUTH_RESPONSE[];
}

const COMMAND_NAMES = new Map<number, string>(
  Object.entries(TPM_CC).map(([name, code]) => [code, name.replace(/^TPM_CC_/, 'TPM2_')]),
);

export function commandName(code: number): string {
  return COMMAND_NAMES.get(code) ?? `TPM2 command 0x${code.toString(16).padStart(8, '0')}`;
}

export function marshalCommand(command: TpmCommand): Buffer {
  const body = new TpmWriter();
  for (const handle of command.handles ?? []) {
    body.u32(handle);
  }
  if (command.sessions !== undefined) {
    const auth = new TpmWriter();
    for (const session of command.sessions) {
      auth.u32(session.sessionHandle).tpm2b(session.nonce).u8(session.sessionAttributes).tpm2b(session.hmac);
    }
    const area = auth.toBuffer();
    body.u32(area.length).bytes(area);
  }
  body.bytes(command.parameters ?? Buffer.alloc(0));
  const content = body.toBuffer();
  const tag = command.sessions === undefined ? TPM_ST.TPM_ST_NO_SESSIONS : TPM_ST.TPM_ST_SESSIONS;
  return new TpmWriter().u16(tag).u32(10 + content.length).u32(command.code).bytes(content).toBuffer();
}

/** Splits a successful response into handles, parameters and session acknowledgements (Part 1 §18.4). */
export function unmarshalResponse(command: TpmCommand, bytes: Buffer): TpmResponse {
  const name = commandName(command.code);
  const r = new TpmReader(bytes, `${name} response`);
  const tag = r.u16('tag');
  r.u32('responseSize');
  r.u32('responseCode');
  const handles: number[] = [];
  for (let i = 0; i < (command.responseHandles ?? 0); i += 1) {
    handles.push(r.u32(`handle[${i}]`));
  }
  let parameterBytes: Buffer;
  const sessions: TPMS_AUTH_RESPONSE[] = [];
  if (tag === TPM_ST.TPM_ST_SESSIONS) {
    const size = r.u32('parameterSize');
    parameterBytes = r.bytesOf(size, 'parameters');
    for (let i = 0; i < (command.sessions?.length ?? 0); i += 1) {
      sessions.push({ nonce: r.tpm2b(`session[${i}].nonce`), sessionAttributes: r.u8(`session[${i}].sessionAttributes`), hmac: r.tpm2b(`session[${i}].hmac`) });
    }
    r.end();
  } else if (tag === TPM_ST.TPM_ST_NO_SESSIONS) {
    parameterBytes = r.bytesOf(r.remaining, 'parameters');
  } else {
    throw r.error('tag', `0x${tag.toString(16)} is not a response tag`, 0);
  }
  return { handles, parameters: new TpmReader(parameterBytes, `${name} parameters`), sessions };
}

export interface TpmClientOptions {
  /** Times a command is re-sent after TPM_RC_RETRY, TPM_RC_YIELDED or TPM_RC_TESTING. */
  readonly retries?: number;
  readonly retryDelayMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/**
 * Sends TPM 2.0 commands over a transport and turns failures into TpmError (named response code and
 * the handle/session/parameter it blames). Commands the TPM asks to retry are retried with backoff.
 */
export class TpmClient {
  private readonly retries: number;
  private readonly retryDelayMs: number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    readonly transport: TpmTransport,
    options: TpmClientOptions = {},
  ) {
    this.retries = options.retries ?? 10;
    this.retryDelayMs = options.retryDelayMs ?? 20;
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
  }

  async execute(command: TpmCommand): Promise<TpmResponse> {
    const bytes = marshalCommand(command);
    for (let attempt = 0; ; attempt += 1) {
      const response = await this.transport.transmit(bytes);
      if (response.length < 10) {
        throw new TpmTransportError(this.transport.description, 'protocol', `response of ${response.length} bytes`);
      }
      const code = response.readUInt32BE(6);
      if (code === 0) {
        return unmarshalResponse(command, response);
      }
      if (RETRYABLE_CODES.has(code) && attempt < this.retries) {
        await this.sleep(this.retryDelayMs * 2 ** Math.min(attempt, 6));
        continue;
      }
      throw new TpmError(commandName(command.code), code);
    }
  }

  close(): Promise<void> {
    return this.transport.close();
  }
}
