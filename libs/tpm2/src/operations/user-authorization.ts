import { TPM_ALG_ID, TPM_RH, TPMA_OBJECT } from '../constants';
import type { SaltedSession } from '../client/salted-session';
import { passwordAuth, policyAuth } from '../client/session-auth';
import type { CommandAuth } from '../client/session-protocol';
import type { SaltKey } from '../commands/salted-session';
import { tpm2PolicyOR, tpm2PolicySecret, tpm2StartAuthSession, TPM_SE } from '../commands/policy-session';
import { objectName } from '../names';
import { ekPolicyA, ekPolicyB, ekPolicyC } from '../policy/ek-policies';
import type { TPMT_PUBLIC } from '../structures/tpmt-public';
import { startSaltedSession } from './session-salt';
import type { TpmScope } from './tpm-scope';

/**
 * How the USER role of an object is authorized (Part 1 §19.7):
 *   password               userWithAuth set: its authValue (empty for every object rackseal uses)
 *   endorsement-policy-a   PolicySecret(TPM_RH_ENDORSEMENT): the low-range EKs (PolicyA, 8371…69aa)
 *   endorsement-policy-b   PolicySecret then PolicyOR(PolicyA, PolicyC): the high-range EKs (PolicyB)
 */
export type UserAuthorizationKind = 'password' | 'endorsement-policy-a' | 'endorsement-policy-b';

export interface UserAuthorizationOptions {
  /**
   * An object with userWithAuth set and an EK policy (swtpm's P-384 EK, H-3 templates) accepts
   * either; the password costs no command, so it is the default. 'policy' forces the policy.
   */
  readonly prefer?: 'password' | 'policy';
  /** The endorsement hierarchy's authValue, for PolicySecret; empty on almost every machine. */
  readonly endorsementAuth?: Buffer;
}

/**
 * How one command protects its parameters in a salted authorization (Part 1 §21): `decrypt`
 * encrypts the command's first parameter, `encrypt` has the TPM encrypt the response's.
 */
export interface ParameterProtection {
  readonly decrypt?: boolean;
  readonly encrypt?: boolean;
}

export interface SaltedAuthorizationOptions extends UserAuthorizationOptions {
  /**
   * Salt the authorization to this key (a restricted decryption key whose public area the caller
   * checked): the policy session is salted, and the password becomes a salted HMAC session, so
   * `use` can encrypt parameters. Absent: password and unsalted policy sessions as before.
   */
  readonly salt?: SaltKey;
}

/** The object's authPolicy is none rackseal knows how to satisfy, and userWithAuth is clear. */
export class UnsupportedAuthorizationError extends Error {
  constructor(pub: TPMT_PUBLIC) {
    super(
      `cannot authorize the object: userWithAuth is clear and its authPolicy ${pub.authPolicy.toString('hex') || '(empty)'} is neither EK PolicyA nor PolicyB`,
    );
    this.name = 'UnsupportedAuthorizationError';
  }
}

function equalsPolicy(pub: TPMT_PUBLIC, compute: (hashAlg: number) => Buffer): boolean {
  try {
    return pub.authPolicy.equals(compute(pub.nameAlg));
  } catch {
    // No EK policy is defined for this nameAlg (e.g. no PolicyC NV index for SHA-1).
    return false;
  }
}

export function userAuthorizationKind(pub: TPMT_PUBLIC, prefer: 'password' | 'policy' = 'password'): UserAuthorizationKind {
  const userWithAuth = (pub.objectAttributes & TPMA_OBJECT.userWithAuth) !== 0;
  if (userWithAuth && prefer === 'password') {
    return 'password';
  }
  if (equalsPolicy(pub, ekPolicyA)) {
    return 'endorsement-policy-a';
  }
  if (equalsPolicy(pub, ekPolicyB)) {
    return 'endorsement-policy-b';
  }
  if (userWithAuth) {
    return 'password';
  }
  throw new UnsupportedAuthorizationError(pub);
}

/**
 * Authorizations for a run of commands that name one object in the USER role (an EK as parent of
 * Create, Load, Import, or as the key of ActivateCredential). A policy is satisfied afresh before
 * each command (the TPM resets a policy session after use, Part 1 §19.7.3) in one session: it is
 * kept open (continueSession) between commands and left for the TPM to close on the last one, so
 * a run of n commands costs one StartAuthSession and no FlushContext. Sessions live in `scope`.
 */
export class UserAuthorization {
  readonly kind: UserAuthorizationKind;
  private session: number | undefined;
  private salted: SaltedSession | undefined;

  constructor(
    private readonly scope: TpmScope,
    private readonly pub: TPMT_PUBLIC,
    private readonly options: SaltedAuthorizationOptions = {},
  ) {
    this.kind = userAuthorizationKind(pub, options.prefer);
  }

  /**
   * Runs `command` with the authorization; `last` lets the TPM flush the session when the command
   * succeeds. After a failure the session (whose digest or nonce is then unknown) is left to the
   * scope and the next use starts another. `protection` needs the `salt` option.
   */
  async use<T>(last: boolean, command: (auth: CommandAuth) => Promise<T>, protection: ParameterProtection = {}): Promise<T> {
    if (this.options.salt !== undefined) {
      return this.useSalted(this.options.salt, last, command, protection);
    }
    if (protection.decrypt === true || protection.encrypt === true) {
      throw new RangeError('parameter encryption needs a salted authorization (the salt option)');
    }
    if (this.kind === 'password') {
      return command(passwordAuth());
    }
    const client = this.scope.client;
    if (this.session === undefined) {
      // The session's hash must be the object's nameAlg: authPolicy is a digest of that algorithm.
      const started = await tpm2StartAuthSession(client, TPM_SE.TPM_SE_POLICY, this.pub.nameAlg);
      this.session = this.scope.track(started.sessionHandle);
    }
    const session = this.session;
    try {
      await this.satisfyPolicy(session);
      const result = await command(policyAuth(session, !last));
      if (last) {
        this.scope.forget(session);
        this.session = undefined;
      }
      return result;
    } catch (error) {
      // Still tracked by the scope, which flushes it (or finds it gone).
      this.session = undefined;
      throw error;
    }
  }

  /**
   * The salted variant: one salted session for the run, a policy session satisfied afresh before
   * each command, or for a password object an HMAC session whose key includes the (empty)
   * authValue, so the password itself never crosses the bus either.
   */
  private async useSalted<T>(salt: SaltKey, last: boolean, command: (auth: CommandAuth) => Promise<T>, protection: ParameterProtection): Promise<T> {
    const policy = this.kind !== 'password';
    if (this.salted === undefined || !this.salted.isOpen) {
      // A policy session's hash is the object's nameAlg; an HMAC session's is SHA-256.
      this.salted = await startSaltedSession(this.scope, salt, policy ? 'policy' : 'hmac', policy ? this.pub.nameAlg : TPM_ALG_ID.TPM_ALG_SHA256);
    }
    const session = this.salted;
    try {
      if (policy) {
        await this.satisfyPolicy(session.sessionHandle);
      }
      const result = await command(session.use({ entityName: objectName(this.pub), continueSession: !last, ...protection }));
      if (last) {
        this.scope.forget(session.sessionHandle);
        this.salted = undefined;
      }
      return result;
    } catch (error) {
      this.salted = undefined;
      throw error;
    }
  }

  private async satisfyPolicy(session: number): Promise<void> {
    const client = this.scope.client;
    await tpm2PolicySecret(client, TPM_RH.TPM_RH_ENDORSEMENT, passwordAuth(this.options.endorsementAuth), session);
    if (this.kind === 'endorsement-policy-b') {
      await tpm2PolicyOR(client, session, [ekPolicyA(this.pub.nameAlg), ekPolicyC(this.pub.nameAlg)]);
    }
  }
}
