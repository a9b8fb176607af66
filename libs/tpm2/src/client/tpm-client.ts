import { TpmReader } from '../codec/tpm-reader';
import { TpmWriter } from '../codec/tpm-writer';
import { TPM_CC, TPM_ST } from '../constants';
import { RETRYABLE_CODES } from './response-codes';
import type { TPMS_AUTH_COMMAND, TPMS_AUTH_RESPONSE } from './session-auth';
import { checkResponse, type CommandAuth, hasSaltedSession, type ProtectedCommand, protectCommand } from './session-protocol';
import { TpmError, TpmTransportError } from './tpm-errors';
import type { TpmTransport } from './transport';

/** One command as Part 1 §18.2 lays it out: code, handle area, authorization area, parameters. */
export interface TpmCommand {
  readonly code: number;
  readonly handles?: readonly number[];
  /**
   * Present: tag TPM_ST_SESSIONS and an authorization area; absent: TPM_ST_NO_SESSIONS. A salted
   * session's use (SessionAuthorization) is turned into its TPMS_AUTH_COMMAND when sent.
   */
  readonly sessions?: readonly CommandAuth[];
  /**
   * The Names (Part 1 §16) of the handles, for cpHash when a salted session is used; an entry left
   * undefined is taken from the salted session that authorizes that handle.
   */
  readonly names?: readonly (Buffer | undefined)[];
  readonly parameters?: Buffer;
  /** How many handles the response carries before its parameters (e.g. 1 for CreatePrimary, Load). */
  readonly responseHandles?: number;
}

/** A command as it goes on the wire: every session already a TPMS_AUTH_COMMAND. */
export interface TpmWireCommand extends Omit<TpmCommand, 'sessions'> {
  readonly sessions?: readonly TPMS_AUTH_COMMAND[];
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

/** The structure names a response's parse errors carry, built once per known command, not per call. */
interface ResponseLabels {
  readonly response: string;
  readonly parameters: string;
}

const RESPONSE_LABELS = new Map<number, ResponseLabels>(
  [...COMMAND_NAMES].map(([code, name]) => [code, { response: `${name} response`, parameters: `${name} parameters` }]),
);

function responseLabels(code: number): ResponseLabels {
  const known = RESPONSE_LABELS.get(code);
  if (known !== undefined) {
    return known;
  }
  const name = commandName(code);
  return { response: `${name} response`, parameters: `${name} parameters` };
}

/** Command header: tag u16 ‖ commandSize u32 ‖ commandCode u32 (Part 1 §18.2). */
const COMMAND_HEADER_SIZE = 10;
/** TPMS_AUTH_COMMAND without its two buffers: sessionHandle u32, two u16 sizes, sessionAttributes u8. */
const AUTH_COMMAND_FIXED_SIZE = 4 + 2 + 1 + 2;

const NO_PARAMETERS = Buffer.alloc(0);
const NO_HANDLES: readonly number[] = Object.freeze([]);
const NO_AUTH_RESPONSES: readonly TPMS_AUTH_RESPONSE[] = Object.freeze([]);

export function marshalCommand(command: TpmWireCommand): Buffer {
  const handles = command.handles ?? NO_HANDLES;
  const sessions = command.sessions;
  const parameters = command.parameters ?? NO_PARAMETERS;
  // Sizes first, so the command is written once into a buffer of its exact size.
  let authorizationSize = 0;
  if (sessions !== undefined) {
    for (const session of sessions) {
      authorizationSize += AUTH_COMMAND_FIXED_SIZE + session.nonce.length + session.hmac.length;
    }
  }
  const size = COMMAND_HEADER_SIZE + 4 * handles.length + (sessions === undefined ? 0 : 4 + authorizationSize) + parameters.length;
  const w = new TpmWriter(size);
  w.u16(sessions === undefined ? TPM_ST.TPM_ST_NO_SESSIONS : TPM_ST.TPM_ST_SESSIONS).u32(size).u32(command.code);
  for (const handle of handles) {
    w.u32(handle);
  }
  if (sessions !== undefined) {
    w.u32(authorizationSize);
    for (const session of sessions) {
      w.u32(session.sessionHandle).tpm2b(session.nonce).u8(session.sessionAttributes).tpm2b(session.hmac);
    }
  }
  return w.bytes(parameters).toBuffer();
}

const authResponseFields = (i: number) => ({ nonce: `session[${i}].nonce`, sessionAttributes: `session[${i}].sessionAttributes`, hmac: `session[${i}].hmac` });
/** Field names of the session acknowledgements, built once for the three sessions a command may carry. */
const AUTH_RESPONSE_FIELDS = [0, 1, 2].map(authResponseFields);

function readHandles(r: TpmReader, count: number): number[] {
  const handles: number[] = [];
  for (let i = 0; i < count; i += 1) {
    handles.push(r.u32(`handle[${i}]`));
  }
  return handles;
}

/** Splits a successful response into handles, parameters and session acknowledgements (Part 1 §18.4). */
export function unmarshalResponse(command: TpmCommand, bytes: Buffer): TpmResponse {
  const labels = responseLabels(command.code);
  const r = new TpmReader(bytes, labels.response);
  const tag = r.u16('tag');
  r.u32('responseSize');
  r.u32('responseCode');
  const handles: readonly number[] = command.responseHandles === undefined || command.responseHandles === 0 ? NO_HANDLES : readHandles(r, command.responseHandles);
  if (tag === TPM_ST.TPM_ST_SESSIONS) {
    // The parameter area is only parsed further, by the command's reader: no copy of it is made.
    const parameters = r.sub(r.u32('parameterSize'), 'parameters', labels.parameters);
    const sessions: TPMS_AUTH_RESPONSE[] = [];
    for (let i = 0; i < (command.sessions?.length ?? 0); i += 1) {
      const field = AUTH_RESPONSE_FIELDS[i] ?? authResponseFields(i);
      sessions.push({ nonce: r.tpm2b(field.nonce), sessionAttributes: r.u8(field.sessionAttributes), hmac: r.tpm2b(field.hmac) });
    }
    r.end();
    return { handles, parameters, sessions };
  }
  if (tag === TPM_ST.TPM_ST_NO_SESSIONS) {
    return { handles, parameters: r.sub(r.remaining, 'parameters', labels.parameters), sessions: NO_AUTH_RESPONSES };
  }
  throw r.error('tag', `0x${tag.toString(16)} is not a response tag`, 0);
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
    if (hasSaltedSession(command.sessions)) {
      return this.executeProtected(command);
    }
    return this.send(command as TpmWireCommand);
  }

  /** A command with salted sessions: HMACs and parameter encryption around the exchange (session-protocol.ts). */
  private async executeProtected(command: TpmCommand): Promise<TpmResponse> {
    const name = commandName(command.code);
    const protectedCommand: ProtectedCommand = protectCommand({
      code: command.code,
      commandName: name,
      handles: command.handles ?? NO_HANDLES,
      names: command.names,
      sessions: command.sessions ?? [],
      parameters: command.parameters ?? NO_PARAMETERS,
    });
    const response = await this.send({ ...command, sessions: protectedCommand.sessions, parameters: protectedCommand.parameters });
    const parameters = checkResponse(name, command.code, protectedCommand, response.parameters, response.sessions);
    return { ...response, parameters };
  }

  private async send(command: TpmWireCommand): Promise<TpmResponse> {
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
