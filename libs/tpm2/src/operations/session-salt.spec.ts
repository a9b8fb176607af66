import { TpmClient } from '../client/tpm-client';
import { FakeTpm } from '../testing/fake-response';
import { AK_TEMPLATE_ECC, CERTIFIED_DECRYPT_KEY_TEMPLATE, EK_TEMPLATE_ECC_L2, EK_TEMPLATE_RSA_L1, SEALED_SECRET_TEMPLATE, SRK_TEMPLATE_ECC, SRK_TEMPLATE_RSA } from '../templates';
import { checkSaltKey, SaltKeyError, startSaltedSession } from './session-salt';
import { withTpmScope } from './tpm-scope';

describe('checkSaltKey: only a restricted decryption key may receive a session salt', () => {
  it.each([
    ['RSA EK (L-1)', EK_TEMPLATE_RSA_L1],
    ['P-256 EK (L-2)', EK_TEMPLATE_ECC_L2],
    ['RSA SRK', SRK_TEMPLATE_RSA],
    ['P-256 SRK', SRK_TEMPLATE_ECC],
  ])('accepts the %s', (_label, template) => {
    expect(() => checkSaltKey({ handle: 0x81000001, public: template })).not.toThrow();
  });

  it.each([
    // Unrestricted: RSA_Decrypt of a recorded encryptedSalt would hand anyone the salt.
    ['the certified decrypt key (unrestricted)', CERTIFIED_DECRYPT_KEY_TEMPLATE, 'objectAttributes 0x00020472 are not a restricted decryption key'],
    ['an AK (sign)', AK_TEMPLATE_ECC, 'are not a restricted decryption key'],
    ['a sealed data object', SEALED_SECRET_TEMPLATE, 'it is a TPM_ALG_KEYEDHASH object, not an RSA or ECC key'],
  ])('refuses %s, before anything is sent', async (_label, template, reason) => {
    expect(() => checkSaltKey({ handle: 0x80000001, public: template })).toThrow(SaltKeyError);
    expect(() => checkSaltKey({ handle: 0x80000001, public: template })).toThrow(reason);
    const tpm = new FakeTpm(() => ({}));
    await expect(withTpmScope(new TpmClient(tpm), (scope) => startSaltedSession(scope, { handle: 0x80000001, public: template }, 'hmac', 0x000b))).rejects.toBeInstanceOf(SaltKeyError);
    expect(tpm.sent).toHaveLength(0);
  });
});
