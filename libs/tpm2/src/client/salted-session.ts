import { randomBytes } from 'node:crypto';
import { type TPMT_SYM_DEF, trimAuthValue } from '../crypto/session-crypto';
import { TPMA_SESSION } from './session-auth';
import { SessionClosedError } from './tpm-errors';

/** Part 2 §6.11 TPM_SE values a salted session can have (a trial session authorizes nothing). */
export type SaltedSessionType = 'hmac' | 'policy';

/**
 * The caller's half of a salted session (Part 1 §19.6): the session key both sides derived from
 * the salt, and the TPM's last nonce, which rolls with every command that uses the session.
 * Made by tpm2StartSaltedSession; used through `use()` in a command's authorization area. The
 * session key never leaves this object except into the HMAC and CFB computations.
 */
export class SaltedSession {
  private nonce: Buffer;
  private open = true;

  constructor(
    readonly sessionHandle: number,
    readonly sessionType: SaltedSessionType,
    /** The session's hash: of its HMACs, of its KDFs, and (policy) of its policy digest. */
    readonly authHash: number,
    readonly symmetric: TPMT_SYM_DEF,
    private readonly sessionKey: Buffer,
    nonceTPM: Buffer,
  ) {
    this.nonce = Buffer.from(nonceTPM);
  }

  /** The TPM's current nonce: nonceOlder of the next command, and what PolicySecret may bind to. */
  get nonceTPM(): Buffer {
    return Buffer.from(this.nonce);
  }

  get isOpen(): boolean {
    return this.open;
  }

  /** One use of the session in one command's authorization area. */
  use(options: SessionUseOptions = {}): SessionAuthorization {
    if (!this.open) {
      throw new SessionClosedError(this.sessionHandle);
    }
    return new SessionAuthorization(this, options);
  }

  /** @internal the HMAC key: sessionKey ‖ authValue for an HMAC session authorizing an entity (unbound), else sessionKey. */
  hmacKey(use: SessionAuthorization): Buffer {
    return this.sessionType === 'hmac' && use.authorizes ? Buffer.concat([this.sessionKey, use.authValue]) : this.sessionKey;
  }

  /**
   * @internal the parameter-encryption sessionValue: sessionKey ‖ the authorized entity's authValue,
   * for policy sessions too (the TPM adds the authValue of any entity a session authorizes).
   */
  cfbKey(use: SessionAuthorization): Buffer {
    return use.authorizes ? Buffer.concat([this.sessionKey, use.authValue]) : this.sessionKey;
  }

  /** @internal the TPM answered this use: its new nonce, and whether it flushed the session. */
  acknowledged(nonceTPM: Buffer, continueSession: boolean): void {
    this.nonce = Buffer.from(nonceTPM);
    if (!continueSession) {
      this.close();
    }
  }

  /** @internal the response failed its check: the nonces are no longer known to agree. */
  close(): void {
    this.open = false;
    this.nonce = Buffer.alloc(0);
  }
}

export interface SessionUseOptions {
  /**
   * The Name (Part 1 §16) of the entity this session authorizes in this command, in cpHash with
   * the other handles'. Absent: the session only encrypts (a session beyond the authorizations).
   */
  readonly entityName?: Buffer;
  /** The authorized entity's authValue (empty for every object rackseal makes). */
  readonly authValue?: Buffer;
  /** Encrypt the command's first parameter (TPMA_SESSION.decrypt: the TPM decrypts it). */
  readonly decrypt?: boolean;
  /** Have the TPM encrypt the response's first parameter (TPMA_SESSION.encrypt). */
  readonly encrypt?: boolean;
  /** Keep the session after the command; clear: the TPM flushes it when the command succeeds. */
  readonly continueSession?: boolean;
  /** This command's nonceCaller; default fresh random bytes. Given only to replay a recorded exchange. */
  readonly nonceCaller?: Buffer;
}

/** One use of a salted session: what it authorizes and how it protects the parameters. */
export class SessionAuthorization {
  readonly sessionAttributes: number;
  readonly authValue: Buffer;
  readonly entityName: Buffer | undefined;
  /** nonceCaller of this command: fresh, as long as the TPM's nonce (Part 3 §11.1). */
  readonly nonceCaller: Buffer;

  constructor(
    readonly session: SaltedSession,
    options: SessionUseOptions,
  ) {
    this.entityName = options.entityName;
    this.authValue = trimAuthValue(options.authValue ?? Buffer.alloc(0));
    this.sessionAttributes =
      (options.continueSession === true ? TPMA_SESSION.continueSession : 0) |
      (options.decrypt === true ? TPMA_SESSION.decrypt : 0) |
      (options.encrypt === true ? TPMA_SESSION.encrypt : 0);
    this.nonceCaller = options.nonceCaller === undefined ? randomBytes(session.nonceTPM.length) : Buffer.from(options.nonceCaller);
  }

  get authorizes(): boolean {
    return this.entityName !== undefined;
  }

  get decrypts(): boolean {
    return (this.sessionAttributes & TPMA_SESSION.decrypt) !== 0;
  }

  get encrypts(): boolean {
    return (this.sessionAttributes & TPMA_SESSION.encrypt) !== 0;
  }

  get continues(): boolean {
    return (this.sessionAttributes & TPMA_SESSION.continueSession) !== 0;
  }
}
