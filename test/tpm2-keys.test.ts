import {
  AK_TEMPLATE_ECC,
  AK_TEMPLATE_RSA,
  checkAkAttributes,
  ekPubHash,
  ekPublicFromKey,
  handleName,
  marshalTpmtPublic,
  objectName,
  qualifiedName,
  TPM_RH,
  unmarshalTpm2bPublic,
} from '@rackseal/tpm2';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { useSwtpms } from './support/swtpm';
import { tpm2 } from './support/tpm2-tools';

// Names, qualified names, key conversion, ekPubHash and the EK templates, checked against what
// swtpm's TPM computes and what tpm2-tools reports.
describe('libs/tpm2 keys and names against swtpm', () => {
  const fixture = useSwtpms(1);
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-keys-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const EKS = [
    { label: 'RSA-2048 EK (L-1)', handle: '0x81010001', cert: () => fixture.at(0).rsaEkCertDer() },
    { label: 'ECC P-384 EK (H-3)', handle: '0x81010016', cert: () => fixture.at(0).eccEkCertDer() },
  ];

  it.each(EKS)('$label: Name and qualified name equal the TPM\'s', async ({ handle }) => {
    const tpm = fixture.at(0);
    const pubFile = join(dir, `${handle}.pub`);
    const nameFile = join(dir, `${handle}.name`);
    const qnameFile = join(dir, `${handle}.qname`);
    await tpm2(tpm, 'readpublic', '-c', handle, '-o', pubFile, '-n', nameFile, '-q', qnameFile);
    const pub = unmarshalTpm2bPublic(await readFile(pubFile));
    const name = objectName(pub);
    expect(name.toString('hex')).toBe((await readFile(nameFile)).toString('hex'));
    // An EK is a primary key of the endorsement hierarchy: its parent's QN is the hierarchy handle.
    const qname = qualifiedName(handleName(TPM_RH.TPM_RH_ENDORSEMENT), name, pub.nameAlg);
    expect(qname.toString('hex')).toBe((await readFile(qnameFile)).toString('hex'));
  });

  it.each(EKS)('$label: the public area rebuilt from the certificate equals the TPM\'s byte for byte', async ({ handle, cert }) => {
    const tpm = fixture.at(0);
    const pubFile = join(dir, `${handle}-cmp.pub`);
    await tpm2(tpm, 'readpublic', '-c', handle, '-o', pubFile);
    const fromTpm = unmarshalTpm2bPublic(await readFile(pubFile));
    const certificate = new X509Certificate(await cert());
    const fromCert = ekPublicFromKey(certificate.publicKey);
    expect(marshalTpmtPublic(fromCert).toString('hex')).toBe(fromTpm.raw.toString('hex'));
    expect(ekPubHash(fromTpm)).toBe(ekPubHash(certificate));
    expect(ekPubHash(fromTpm)).toMatch(/^[0-9a-f]{64}$/);
  });

  it.each([
    ['rsa', 'rsassa', AK_TEMPLATE_RSA],
    ['ecc', 'ecdsa', AK_TEMPLATE_ECC],
  ] as const)('an AK made by tpm2_createak -G %s passes the AK attribute check; our template differs only in noDA', async (alg, scheme, template) => {
    const tpm = fixture.at(0);
    const akPub = join(dir, `ak-${alg}.pub`);
    await tpm2(tpm, 'createak', '-C', '0x81010001', '-c', join(dir, `ak-${alg}.ctx`), '-G', alg, '-g', 'sha256', '-s', scheme, '-u', akPub);
    await tpm2(tpm, 'flushcontext', '-t');
    const ak = unmarshalTpm2bPublic(await readFile(akPub));
    expect(checkAkAttributes(ak)).toEqual({ ok: true });
    expect(ak.objectAttributes).toBe(0x00050072);
    expect(template.objectAttributes).toBe(0x00050472);
    expect(ak.parameters).toEqual(template.parameters);
  });
});
