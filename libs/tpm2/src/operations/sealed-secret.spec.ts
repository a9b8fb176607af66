import { TPM_ALG_ID, TPMA_OBJECT } from '../constants';
import { marshalTpmtPublic } from '../structures/tpmt-public';
import { CERTIFIED_DECRYPT_KEY_TEMPLATE, SEALED_SECRET_TEMPLATE } from '../templates';
import { checkSealedSecretPublic, NotASealedSecretError } from './sealed-secret';

describe('the sealed-secret template and its check', () => {
  it('marshals as keyedHash, SHA-256, 0x00000452, no policy, scheme NULL, empty unique (Part 2 §12.2.4)', () => {
    // type 0008 ‖ nameAlg 000b ‖ objectAttributes 00000452 ‖ authPolicy 0000 ‖ scheme 0010 (NULL) ‖ unique 0000
    expect(marshalTpmtPublic(SEALED_SECRET_TEMPLATE).toString('hex')).toBe('0008000b00000452000000100000');
    expect(SEALED_SECRET_TEMPLATE.objectAttributes).toBe(
      TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.noDA,
    );
  });

  it('accepts the template whatever its unique; refuses another type, a movable object and another shape, by name', () => {
    expect(() => checkSealedSecretPublic({ ...SEALED_SECRET_TEMPLATE, unique: Buffer.alloc(32, 7) })).not.toThrow();
    expect(() => checkSealedSecretPublic(CERTIFIED_DECRYPT_KEY_TEMPLATE)).toThrow(
      new NotASealedSecretError('its object type is 0x1, not TPM_ALG_KEYEDHASH'),
    );
    const movable = { ...SEALED_SECRET_TEMPLATE, objectAttributes: SEALED_SECRET_TEMPLATE.objectAttributes & ~TPMA_OBJECT.fixedTPM };
    expect(() => checkSealedSecretPublic(movable)).toThrow('not a sealed secret: fixedTPM and fixedParent must both be set (attributes 0x00000450)');
    const withPolicy = { ...SEALED_SECRET_TEMPLATE, authPolicy: Buffer.alloc(32) };
    expect(() => checkSealedSecretPublic(withPolicy)).toThrow('not a sealed secret: its public area differs from the sealed-secret template (attributes 0x00000452)');
    const hmacKey = { ...SEALED_SECRET_TEMPLATE, parameters: { scheme: { scheme: TPM_ALG_ID.TPM_ALG_HMAC, hashAlg: TPM_ALG_ID.TPM_ALG_SHA256 } } };
    expect(() => checkSealedSecretPublic(hmacKey)).toThrow(NotASealedSecretError);
  });
});
