import { marshal } from '../codec/tpm-writer';
import { TPM_ALG_ID, TPMA_OBJECT } from '../constants';
import type { TPMS_AUTH_COMMAND } from '../client/session-auth';
import { TpmClient } from '../client/tpm-client';
import { FakeTpm } from '../testing/fake-response';
import { ekPolicyA, ekPolicyC } from '../policy/ek-policies';
import { AK_TEMPLATE_RSA, EK_TEMPLATE_ECC_L2, EK_TEMPLATE_ECC_P384_H3, EK_TEMPLATE_RSA_L1, SRK_TEMPLATE_RSA } from '../templates';
import { withTpmScope } from './tpm-scope';
import { UnsupportedAuthorizationError, UserAuthorization, userAuthorizationKind } from './user-authorization';

/** Answers StartAuthSession with session 0x03000000, PolicySecret with a NULL ticket, the rest empty. */

/** Answers StartAuthSession with policy session 0x03000000 and PolicySecret with an empty result. */
function policyTpm(): FakeTpm {
  return new FakeTpm((code) => {
    if (code === 0x176) {
      return { handles: [0x03000000], parameters: marshal((w) => w.tpm2b(Buffer.alloc(32))) };
    }
    if (code === 0x151) {
      return { parameters: marshal((w) => w.u16(0).u16(0x8023).u32(0x40000007).u16(0)) };
    }
    return {};
  }, 0x00);
}

describe('userAuthorizationKind', () => {
  it('low-range EKs need PolicySecret(endorsement); the SRK and AKs take their password', () => {
    expect(userAuthorizationKind(EK_TEMPLATE_RSA_L1)).toBe('endorsement-policy-a');
    expect(userAuthorizationKind(EK_TEMPLATE_ECC_L2)).toBe('endorsement-policy-a');
    expect(userAuthorizationKind(SRK_TEMPLATE_RSA)).toBe('password');
    expect(userAuthorizationKind(AK_TEMPLATE_RSA)).toBe('password');
  });

  it('the H-3 EK (userWithAuth and PolicyB) takes the password unless the policy is preferred', () => {
    expect(userAuthorizationKind(EK_TEMPLATE_ECC_P384_H3)).toBe('password');
    expect(userAuthorizationKind(EK_TEMPLATE_ECC_P384_H3, 'policy')).toBe('endorsement-policy-b');
  });

  it('an object with another policy and userWithAuth clear cannot be authorized here', () => {
    const sealed = { ...EK_TEMPLATE_RSA_L1, objectAttributes: TPMA_OBJECT.adminWithPolicy, authPolicy: Buffer.alloc(32, 1) };
    expect(() => userAuthorizationKind(sealed)).toThrow(UnsupportedAuthorizationError);
  });
});

describe('UserAuthorization', () => {
  const run = (auth: UserAuthorization, last: boolean, seen: TPMS_AUTH_COMMAND[]) =>
    auth.use(last, async (a) => {
      // Unsalted authorizations are plain TPMS_AUTH_COMMAND values.
      seen.push(a as TPMS_AUTH_COMMAND);
    });

  it('one session for a run of commands: PolicySecret before each, continueSession until the last, nothing left to flush', async () => {
    const tpm = policyTpm();
    const seen: TPMS_AUTH_COMMAND[] = [];
    await withTpmScope(new TpmClient(tpm), async (scope) => {
      const auth = new UserAuthorization(scope, EK_TEMPLATE_RSA_L1);
      await run(auth, false, seen);
      await run(auth, true, seen);
    });
    expect(tpm.codes).toEqual([0x176, 0x151, 0x151]);
    expect(seen.map((a) => [a.sessionHandle, a.sessionAttributes])).toEqual([
      [0x03000000, 1],
      [0x03000000, 0],
    ]);
    // authHash of the session = the EK's nameAlg.
    expect(tpm.sent[0]!.readUInt16BE(tpm.sent[0]!.length - 2)).toBe(TPM_ALG_ID.TPM_ALG_SHA256);
  });

  it('PolicyB: a SHA-384 session, PolicySecret then PolicyOR(PolicyA, PolicyC)', async () => {
    const tpm = policyTpm();
    await withTpmScope(new TpmClient(tpm), async (scope) => run(new UserAuthorization(scope, EK_TEMPLATE_ECC_P384_H3, { prefer: 'policy' }), true, []));
    expect(tpm.codes).toEqual([0x176, 0x151, 0x171]);
    expect(tpm.sent[0]!.readUInt16BE(tpm.sent[0]!.length - 2)).toBe(TPM_ALG_ID.TPM_ALG_SHA384);
    const or = tpm.sent[2]!.subarray(14);
    const branches = [ekPolicyA(TPM_ALG_ID.TPM_ALG_SHA384), ekPolicyC(TPM_ALG_ID.TPM_ALG_SHA384)];
    expect(or.toString('hex')).toBe(marshal((w) => w.u32(2).tpm2b(branches[0]!).tpm2b(branches[1]!)).toString('hex'));
  });

  it('when the command fails the session is left to the scope, which flushes it', async () => {
    const tpm = policyTpm();
    const error = await withTpmScope(new TpmClient(tpm), async (scope) =>
      new UserAuthorization(scope, EK_TEMPLATE_RSA_L1).use(true, async () => {
        throw new Error('Load refused');
      }),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toBe('Load refused');
    expect(tpm.codes).toEqual([0x176, 0x151, 0x165]);
  });
});
