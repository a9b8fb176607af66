import { checkAkAttributes, checkCertifiedKeyAttributes, describeObjectAttributes } from './attributes';
import { TPMA_OBJECT } from './constants';
import { AK_TEMPLATE_ECC, AK_TEMPLATE_RSA, CERTIFIED_DECRYPT_KEY_TEMPLATE, EK_TEMPLATE_RSA_L1 } from './templates';

describe('object attribute predicates', () => {
  it('names the bits of the EK template (0x000300b2)', () => {
    expect(describeObjectAttributes(0x000300b2)).toEqual([
      'fixedTPM',
      'fixedParent',
      'sensitiveDataOrigin',
      'adminWithPolicy',
      'restricted',
      'decrypt',
    ]);
  });

  it('accepts the AK templates and names the first failing attribute otherwise', () => {
    expect(checkAkAttributes(AK_TEMPLATE_RSA)).toEqual({ ok: true });
    expect(checkAkAttributes(AK_TEMPLATE_ECC)).toEqual({ ok: true });
    const unrestricted = { ...AK_TEMPLATE_RSA, objectAttributes: AK_TEMPLATE_RSA.objectAttributes & ~TPMA_OBJECT.restricted };
    expect(checkAkAttributes(unrestricted)).toEqual({ ok: false, attribute: 'restricted', message: 'AK must have restricted set' });
    const exportable = { ...AK_TEMPLATE_ECC, objectAttributes: AK_TEMPLATE_ECC.objectAttributes & ~TPMA_OBJECT.fixedTPM };
    expect(checkAkAttributes(exportable)).toMatchObject({ ok: false, attribute: 'fixedTPM' });
    const imported = { ...AK_TEMPLATE_RSA, objectAttributes: AK_TEMPLATE_RSA.objectAttributes & ~TPMA_OBJECT.sensitiveDataOrigin };
    expect(checkAkAttributes(imported)).toMatchObject({ ok: false, attribute: 'sensitiveDataOrigin' });
    expect(checkAkAttributes(EK_TEMPLATE_RSA_L1)).toMatchObject({ ok: false, attribute: 'sign' });
  });

  it('accepts the certified decrypt key template and refuses signing, restricted or small keys', () => {
    expect(checkCertifiedKeyAttributes(CERTIFIED_DECRYPT_KEY_TEMPLATE)).toEqual({ ok: true });
    const signing = { ...CERTIFIED_DECRYPT_KEY_TEMPLATE, objectAttributes: CERTIFIED_DECRYPT_KEY_TEMPLATE.objectAttributes | TPMA_OBJECT.sign };
    expect(checkCertifiedKeyAttributes(signing)).toEqual({ ok: false, attribute: 'sign', message: 'certified key must have sign clear' });
    expect(checkCertifiedKeyAttributes(EK_TEMPLATE_RSA_L1)).toMatchObject({ ok: false, attribute: 'restricted' });
    const small = { ...CERTIFIED_DECRYPT_KEY_TEMPLATE, parameters: { ...CERTIFIED_DECRYPT_KEY_TEMPLATE.parameters, keyBits: 1024 } };
    expect(checkCertifiedKeyAttributes(small)).toMatchObject({ ok: false, attribute: 'keyBits' });
    expect(checkCertifiedKeyAttributes(AK_TEMPLATE_ECC)).toMatchObject({ ok: false, attribute: 'type' });
  });
});

