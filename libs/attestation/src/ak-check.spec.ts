import { AK_TEMPLATE_ECC, AK_TEMPLATE_RSA, TPM_ALG_ID, TPMA_OBJECT, type TPMT_PUBLIC } from '@rackseal/tpm2';
import { akProblem } from './ak-check';

const withScheme = (pub: TPMT_PUBLIC, scheme: number, hashAlg?: number): TPMT_PUBLIC =>
  ({ ...pub, parameters: { ...pub.parameters, scheme: hashAlg === undefined ? { scheme } : { scheme, hashAlg } } }) as TPMT_PUBLIC;

describe('akProblem', () => {
  it.each([
    ['RSA RSASSA-SHA256 (AK_TEMPLATE_RSA)', AK_TEMPLATE_RSA],
    ['ECC ECDSA-SHA256 (AK_TEMPLATE_ECC)', AK_TEMPLATE_ECC],
    ['RSA RSAPSS-SHA384', withScheme(AK_TEMPLATE_RSA, TPM_ALG_ID.TPM_ALG_RSAPSS, TPM_ALG_ID.TPM_ALG_SHA384)],
    ['without userWithAuth', { ...AK_TEMPLATE_RSA, objectAttributes: AK_TEMPLATE_RSA.objectAttributes & ~TPMA_OBJECT.userWithAuth }],
  ] as const)('accepts %s', (_label, pub) => {
    expect(akProblem(pub)).toBeUndefined();
  });

  it.each([
    ['not restricted', { ...AK_TEMPLATE_RSA, objectAttributes: AK_TEMPLATE_RSA.objectAttributes & ~TPMA_OBJECT.restricted }, 'AK must have restricted set'],
    ['not fixedTPM', { ...AK_TEMPLATE_ECC, objectAttributes: AK_TEMPLATE_ECC.objectAttributes & ~TPMA_OBJECT.fixedTPM }, 'AK must have fixedTPM set'],
    ['not fixedParent', { ...AK_TEMPLATE_ECC, objectAttributes: AK_TEMPLATE_ECC.objectAttributes & ~TPMA_OBJECT.fixedParent }, 'AK must have fixedParent set'],
    ['imported (no sensitiveDataOrigin)', { ...AK_TEMPLATE_RSA, objectAttributes: AK_TEMPLATE_RSA.objectAttributes & ~TPMA_OBJECT.sensitiveDataOrigin }, 'AK must have sensitiveDataOrigin set'],
    ['a decrypt key too', { ...AK_TEMPLATE_RSA, objectAttributes: AK_TEMPLATE_RSA.objectAttributes | TPMA_OBJECT.decrypt }, 'AK must have decrypt clear'],
    ['SHA-1 Name', { ...AK_TEMPLATE_RSA, nameAlg: TPM_ALG_ID.TPM_ALG_SHA1 }, 'AK nameAlg TPM_ALG_SHA1 is weaker than SHA-256'],
    ['NULL scheme (each quote picks one)', withScheme(AK_TEMPLATE_RSA, TPM_ALG_ID.TPM_ALG_NULL), 'AK scheme TPM_ALG_NULL is not one of TPM_ALG_RSASSA, TPM_ALG_RSAPSS'],
    ['ECDSA on an RSA key', withScheme(AK_TEMPLATE_RSA, TPM_ALG_ID.TPM_ALG_ECDSA, TPM_ALG_ID.TPM_ALG_SHA256), 'AK scheme TPM_ALG_ECDSA is not one of TPM_ALG_RSASSA, TPM_ALG_RSAPSS'],
    ['RSASSA-SHA1', withScheme(AK_TEMPLATE_RSA, TPM_ALG_ID.TPM_ALG_RSASSA, TPM_ALG_ID.TPM_ALG_SHA1), 'AK signing hash TPM_ALG_SHA1 is weaker than SHA-256'],
    ['ECDSA-SHA1', withScheme(AK_TEMPLATE_ECC, TPM_ALG_ID.TPM_ALG_ECDSA, TPM_ALG_ID.TPM_ALG_SHA1), 'AK signing hash TPM_ALG_SHA1 is weaker than SHA-256'],
  ] as const)('refuses an AK %s, naming why', (_label, pub, message) => {
    expect(akProblem(pub as TPMT_PUBLIC)).toBe(message);
  });
});
