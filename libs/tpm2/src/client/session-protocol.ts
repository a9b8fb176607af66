import { timingSafeEqual } from 'node:crypto';
import { TpmReader } from '../codec/tpm-reader';
import { cpHash, parameterCfb, rpHash, sessionHmac } from '../crypto/session-crypto';
import { SessionAuthorization } from './salted-session';
import type { TPMS_AUTH_COMMAND, TPMS_AUTH_RESPONSE } from './session-auth';
import { SessionUsageError, TpmResponseIntegrityError } from './tpm-errors';

/**
 * What the client does around a command that uses salted sessions (Part 1 §19.6, §21):
 *   before sending  encrypt the first parameter (a `decrypt` session), compute cpHash over the
 *                   handles' Names and the parameters as sent, and each session's command HMAC;
 *   after a success verify each session's response HMAC over rpHash before anything is read, roll
 *                   its nonce, and decrypt the first response parameter (an `encrypt` session).
 * Password and unsalted policy sessions (TPMS_AUTH_COMMAND values) pass through unchanged.
 */

/** An entry of a command's authorization area: a fixed TPMS_AUTH_COMMAND, or one use of a salted session. */
export type CommandAuth = TPMS_AUTH_COMMAND | SessionAuthorization;

export interface ProtectedCommandInput {
  readonly code: number;
  readonly commandName: string;
  readonly handles: readonly number[];
  /** Names of the handles for cpHash; a missing one is taken from the session authorizing that handle. */
  readonly names: readonly (Buffer | undefined)[] | undefined;
  readonly sessions: readonly CommandAuth[];
  readonly parameters: Buffer;
}

export interface ProtectedCommand {
  readonly sessions: readonly TPMS_AUTH_COMMAND[];
  readonly parameters: Buffer;
  /** The uses to check in the response, by their index in the authorization area. */
  readonly uses: readonly (SessionAuthorization | undefined)[];
}

export function hasSaltedSession(sessions: readonly CommandAuth[] | undefined): boolean {
  return sessions !== undefined && sessions.some((s) => s instanceof SessionAuthorization);
}

/** The index of the one session with `flag`, or undefined; two are a usage error (the TPM: TPM_RC_ATTRIBUTES). */
function onlySession(input: ProtectedCommandInput, flag: 'decrypts' | 'encrypts'): number | undefined {
  const found = input.sessions.flatMap((s, i) => (s instanceof SessionAuthorization && s[flag] ? [i] : []));
  if (found.length > 1) {
    throw new SessionUsageError(input.commandName, `sessions ${found.join(' and ')} both ${flag === 'decrypts' ? 'decrypt' : 'encrypt'}; at most one may`);
  }
  return found[0];
}

/** Start and length of the first TPM2B's buffer in `parameters`, which must hold it whole. */
function firstTpm2b(commandName: string, parameters: Buffer, where: string): { start: number; size: number } {
  if (parameters.length < 2 || parameters.readUInt16BE(0) > parameters.length - 2) {
    throw new SessionUsageError(commandName, `the first ${where} parameter is not a complete TPM2B, so it cannot be encrypted`);
  }
  return { start: 2, size: parameters.readUInt16BE(0) };
}

function replaceRange(bytes: Buffer, start: number, replacement: Buffer): Buffer {
  const out = Buffer.from(bytes);
  replacement.copy(out, start);
  return out;
}

function cpHashNames(input: ProtectedCommandInput): Buffer[] {
  return input.handles.map((handle, i) => {
    const session = input.sessions[i];
    const name = input.names?.[i] ?? (session instanceof SessionAuthorization ? session.entityName : undefined);
    if (name === undefined) {
      throw new SessionUsageError(input.commandName, `handle ${i} (0x${handle.toString(16)}) has no Name for cpHash`);
    }
    return name;
  });
}

export function protectCommand(input: ProtectedCommandInput): ProtectedCommand {
  const decryptIndex = onlySession(input, 'decrypts');
  const encryptIndex = onlySession(input, 'encrypts');
  let parameters = input.parameters;
  if (decryptIndex !== undefined) {
    const use = input.sessions[decryptIndex] as SessionAuthorization;
    const { start, size } = firstTpm2b(input.commandName, parameters, 'command');
    const session = use.session;
    const encrypted = parameterCfb(
      'encrypt',
      session.authHash,
      session.cfbKey(use),
      session.symmetric.keyBits,
      use.nonceCaller,
      session.nonceTPM,
      parameters.subarray(start, start + size),
    );
    parameters = replaceRange(parameters, start, encrypted);
  }
  const names = cpHashNames(input);
  const digests = new Map<number, Buffer>();
  const cpHashOf = (hashAlg: number): Buffer => {
    let value = digests.get(hashAlg);
    if (value === undefined) {
      value = cpHash(hashAlg, input.code, names, parameters);
      digests.set(hashAlg, value);
    }
    return value;
  };
  const sessions = input.sessions.map((entry, i): TPMS_AUTH_COMMAND => {
    if (!(entry instanceof SessionAuthorization)) {
      return entry;
    }
    const session = entry.session;
    // Part 1 §19.6: the first session, when it authorizes, also covers the nonces of the sessions
    // that decrypt and encrypt, so they cannot be swapped for others.
    const extraNonces: Buffer[] = [];
    if (i === 0 && entry.authorizes) {
      for (const other of [decryptIndex, encryptIndex === decryptIndex ? undefined : encryptIndex]) {
        const use = other === undefined || other === 0 ? undefined : input.sessions[other];
        if (use instanceof SessionAuthorization) {
          extraNonces.push(use.session.nonceTPM);
        }
      }
    }
    const hmac = sessionHmac(session.authHash, session.hmacKey(entry), cpHashOf(session.authHash), entry.nonceCaller, session.nonceTPM, entry.sessionAttributes, extraNonces);
    return { sessionHandle: session.sessionHandle, nonce: entry.nonceCaller, sessionAttributes: entry.sessionAttributes, hmac };
  });
  return { sessions, parameters, uses: input.sessions.map((s) => (s instanceof SessionAuthorization ? s : undefined)) };
}

/**
 * Checks a successful response's session area against the command's salted sessions and returns
 * the parameters to parse (the first one decrypted). Every HMAC is verified before any nonce
 * rolls or any byte is decrypted; a failure closes every salted session of the command.
 */
export function checkResponse(
  commandName: string,
  code: number,
  protectedCommand: ProtectedCommand,
  parameters: TpmReader,
  sessions: readonly TPMS_AUTH_RESPONSE[],
): TpmReader {
  const raw = parameters.bytes;
  const uses = protectedCommand.uses;
  const refuse = (index: number, reason: string): never => {
    for (const use of uses) {
      use?.session.close();
    }
    throw new TpmResponseIntegrityError(commandName, index, reason);
  };
  const digests = new Map<number, Buffer>();
  uses.forEach((use, i) => {
    if (use === undefined) {
      return;
    }
    const answer = sessions[i];
    if (answer === undefined) {
      return refuse(i, 'no session acknowledgement');
    }
    if (answer.sessionAttributes !== use.sessionAttributes) {
      return refuse(i, `sessionAttributes 0x${answer.sessionAttributes.toString(16)} differ from the command's 0x${use.sessionAttributes.toString(16)}`);
    }
    if (answer.nonce.length !== use.nonceCaller.length) {
      return refuse(i, `nonceTPM of ${answer.nonce.length} bytes, the session's are ${use.nonceCaller.length}`);
    }
    const session = use.session;
    let digest = digests.get(session.authHash);
    if (digest === undefined) {
      digest = rpHash(session.authHash, code, raw);
      digests.set(session.authHash, digest);
    }
    const expected = sessionHmac(session.authHash, session.hmacKey(use), digest, answer.nonce, use.nonceCaller, answer.sessionAttributes);
    if (answer.hmac.length !== expected.length || !timingSafeEqual(answer.hmac, expected)) {
      return refuse(i, 'response HMAC mismatch');
    }
  });
  let decryptedBy: SessionAuthorization | undefined;
  uses.forEach((use, i) => {
    if (use !== undefined) {
      use.session.acknowledged(sessions[i]!.nonce, use.continues);
      if (use.encrypts) {
        decryptedBy = use;
      }
    }
  });
  if (decryptedBy === undefined) {
    return parameters;
  }
  const { start, size } = firstTpm2b(commandName, raw, 'response');
  const session = decryptedBy.session;
  const plain = parameterCfb(
    'decrypt',
    session.authHash,
    session.cfbKey(decryptedBy),
    session.symmetric.keyBits,
    sessions[uses.indexOf(decryptedBy)]!.nonce,
    decryptedBy.nonceCaller,
    raw.subarray(start, start + size),
  );
  return new TpmReader(replaceRange(raw, start, plain), parameters.structure);
}
