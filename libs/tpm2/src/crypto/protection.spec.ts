import { createDecipheriv, createECDH, constants, generateKeyPairSync, type KeyObject, privateDecrypt } from 'node:crypto';
import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_ALG_ID } from '../constants';
import { digest, hmac } from '../hash-algorithms';
import { tpmtPublicFromKey } from '../keys';
import { objectName } from '../names';
import { AK_TEMPLATE_RSA, EK_TEMPLATE_ECC_L2, EK_TEMPLATE_RSA_L1 } from '../templates';
import { unmarshalTpm2bEncryptedSecret } from '../structures/tpm2b-encrypted-secret';
import { unmarshalTpm2bIdObject } from '../structures/tpm2b-id-object';
import { unmarshalTpm2bPrivate } from '../structures/tpm2b-private';
import { unmarshalTpm2bPublic, type EccPublic, type RsaPublic, type TPMT_PUBLIC } from '../structures/tpmt-public';
import { unmarshalTpm2bSensitive } from '../structures/tpmt-sensitive';
import { marshalCredentialFile, parseCredentialFile } from './credential-file';
import { AuthPolicySizeError, CredentialTooLargeError, ObjectNameError, ProtectorKeyError, SealedDataTooLargeError } from './errors';
import { createImportBlob } from './import-blob';
import { KDFa, KDFe } from './kdf';
import { makeCredential } from './make-credential';

// The TPM's side of credential activation and import, done in software with the EK's private key:
// OAEP by OpenSSL (not our encoder), ECDH by OpenSSL, then the KDFs (proven by go-tpm's vectors),
// HMAC check and AES-CFB decryption. The swtpm oracle tests (test/tpm2-credential, test/tpm2-import)
// are the real proof; this catches regressions without a TPM.

const rsaEk = generateKeyPairSync('rsa', { modulusLength: 2048 });
const eccEk = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const RSA_EK: RsaPublic = tpmtPublicFromKey(rsaEk.publicKey, EK_TEMPLATE_RSA_L1);
const ECC_EK: EccPublic = tpmtPublicFromKey(eccEk.publicKey, EK_TEMPLATE_ECC_L2);
const AK_NAME = objectName(AK_TEMPLATE_RSA);

/** A deterministic RandomSource: bytes 0x01, 0x02, … so tests know every seed drawn. */
function counterRandom(): (n: number) => Buffer {
  let next = 1;
  return (n) => Buffer.from(Array.from({ length: n }, () => next++ & 0xff));
}

function recoverSeed(ek: TPMT_PUBLIC, privateKey: KeyObject, label: string, secret: Buffer): Buffer {
  if (ek.type === TPM_ALG_ID.TPM_ALG_RSA) {
    return privateDecrypt({ key: privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: Buffer.from(`${label}\0`) }, secret);
  }
  if (ek.type !== TPM_ALG_ID.TPM_ALG_ECC) {
    throw new Error('not an EK');
  }
  const ecdh = createECDH('prime256v1');
  const jwk = privateKey.export({ format: 'jwk' });
  ecdh.setPrivateKey(Buffer.from(jwk.d!, 'base64url'));
  const ephX = secret.subarray(2, 34);
  const Z = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), ephX, secret.subarray(36)]));
  return KDFe(ek.nameAlg, Z, label, ephX, ek.unique.x, 256);
}

/** Checks the HMAC over (encrypted ‖ name) and decrypts, as ActivateCredential and Import do. */
function unwrap(seed: Buffer, name: Buffer, integrity: Buffer, encrypted: Buffer): Buffer {
  const hmacKey = KDFa(TPM_ALG_ID.TPM_ALG_SHA256, seed, 'INTEGRITY', Buffer.alloc(0), Buffer.alloc(0), 256);
  expect(hmac(TPM_ALG_ID.TPM_ALG_SHA256, hmacKey, encrypted, name).equals(integrity)).toBe(true);
  const symKey = KDFa(TPM_ALG_ID.TPM_ALG_SHA256, seed, 'STORAGE', name, Buffer.alloc(0), 128);
  const decipher = createDecipheriv('aes-128-cfb', symKey, Buffer.alloc(16));
  return Buffer.concat([decipher.update(encrypted), decipher.final()]);
}

describe('makeCredential (Part 1 §24)', () => {
  it.each([
    ['RSA-2048', RSA_EK, rsaEk.privateKey, 256],
    ['P-256', ECC_EK, eccEk.privateKey, 68],
  ] as const)('%s EK: the blob opens with the EK private key and the AK Name, and has the TPM sizes', (_label, ek, privateKey, secretSize) => {
    const credential = Buffer.alloc(32, 0x5a);
    const made = makeCredential(ek, AK_NAME, credential);
    // TPM2B_ID_OBJECT: 0x0044 = 2 + 32 (HMAC) + 2 + 32 (encIdentity) for SHA-256 and a 32-byte credential.
    expect(made.credentialBlob.readUInt16BE(0)).toBe(0x44);
    expect(made.encryptedSecret.readUInt16BE(0)).toBe(secretSize);
    const idObject = unmarshalTpm2bIdObject(made.credentialBlob);
    const seed = recoverSeed(ek, privateKey, 'IDENTITY', unmarshalTpm2bEncryptedSecret(made.encryptedSecret));
    expect(seed).toHaveLength(32);
    const plain = unwrap(seed, AK_NAME, idObject.integrityHMAC, idObject.encIdentity);
    expect(plain.toString('hex')).toBe(`0020${credential.toString('hex')}`);
  });

  it('is deterministic given the randomness, and fresh without it', () => {
    const a = makeCredential(RSA_EK, AK_NAME, Buffer.alloc(32, 1), { random: counterRandom() });
    const b = makeCredential(RSA_EK, AK_NAME, Buffer.alloc(32, 1), { random: counterRandom() });
    expect(a).toEqual(b);
    expect(makeCredential(RSA_EK, AK_NAME, Buffer.alloc(32, 1)).credentialBlob.equals(a.credentialBlob)).toBe(false);
  });

  it('refuses a credential longer than the EK nameAlg digest, naming the limit', () => {
    expect(() => makeCredential(RSA_EK, AK_NAME, Buffer.alloc(33))).toThrow(CredentialTooLargeError);
    expect(() => makeCredential(RSA_EK, AK_NAME, Buffer.alloc(33))).toThrow(
      'credential of 33 bytes exceeds the 32-byte limit (digest size of the EK nameAlg TPM_ALG_SHA256)',
    );
  });

  it.each([
    ['empty', ''],
    ['a bare digest', 'aa'.repeat(32)],
    ['a short SHA-256 Name', `000b${'aa'.repeat(31)}`],
    ['an unknown nameAlg', `0099${'aa'.repeat(32)}`],
  ])('refuses %s as the AK Name', (_label, name) => {
    expect(() => makeCredential(RSA_EK, Buffer.from(name, 'hex'), Buffer.alloc(32))).toThrow(ObjectNameError);
  });

  it('refuses an EK that is not a storage key (an AK) or has no supported symmetric definition', () => {
    expect(() => makeCredential(tpmtPublicFromKey(rsaEk.publicKey, AK_TEMPLATE_RSA), AK_NAME, Buffer.alloc(32))).toThrow(
      /EK is not a storage key: objectAttributes 0x00050472/,
    );
    const noSym: RsaPublic = { ...RSA_EK, parameters: { ...RSA_EK.parameters, symmetric: { algorithm: TPM_ALG_ID.TPM_ALG_NULL } } };
    expect(() => makeCredential(noSym, AK_NAME, Buffer.alloc(32))).toThrow(ProtectorKeyError);
  });
});

describe('tpm2-tools credential file', () => {
  const made = makeCredential(ECC_EK, AK_NAME, Buffer.alloc(16, 7));

  it('is 0xBADCC0DE ‖ 1 ‖ TPM2B_ID_OBJECT ‖ TPM2B_ENCRYPTED_SECRET and parses back to the same bytes', () => {
    const file = marshalCredentialFile(made);
    expect(file.subarray(0, 8).toString('hex')).toBe('badcc0de00000001');
    expect(file.subarray(8).equals(Buffer.concat([made.credentialBlob, made.encryptedSecret]))).toBe(true);
    const parsed = parseCredentialFile(file);
    expect(parsed.credentialBlob.equals(made.credentialBlob)).toBe(true);
    expect(parsed.encryptedSecret.equals(made.encryptedSecret)).toBe(true);
    expect(parsed.secret).toHaveLength(68);
    expect(marshalCredentialFile(parsed).equals(file)).toBe(true);
  });

  it('refuses another magic, another version, truncation and trailing bytes with TpmParseError', () => {
    const file = marshalCredentialFile(made);
    const bad = (mutate: (b: Buffer) => Buffer): unknown => {
      try {
        parseCredentialFile(mutate(Buffer.from(file)));
        return undefined;
      } catch (error) {
        return error;
      }
    };
    const withU32 = (offset: number, value: number) => (b: Buffer): Buffer => {
      b.writeUInt32BE(value, offset);
      return b;
    };
    const magic = bad(withU32(0, 0xbadcc0df));
    expect(magic).toBeInstanceOf(TpmParseError);
    expect((magic as TpmParseError).message).toBe('tpm2-tools credential file.magic at offset 0: 0xbadcc0df is not 0xbadcc0de');
    expect((bad(withU32(4, 2)) as Error).message).toMatch(/version 2 is not 1/);
    expect(bad((b) => b.subarray(0, b.length - 1))).toBeInstanceOf(TpmParseError);
    expect((bad((b) => Buffer.concat([b, Buffer.alloc(1)])) as Error).message).toMatch(/1 trailing byte/);
  });
});

describe('createImportBlob (Part 1 §23.3.2)', () => {
  const policy = Buffer.from('8b5682d81b29435d08d79278150611dc7e5923b2fefcce684a09577b40130a8b', 'hex');

  it.each([
    ['RSA-2048', RSA_EK, rsaEk.privateKey],
    ['P-256', ECC_EK, eccEk.privateKey],
  ] as const)('%s parent: the duplicate opens with the parent key and yields TPMT_SENSITIVE with the data', (_label, parent, privateKey) => {
    const data = Buffer.from('a 32-byte disk encryption key!!!');
    const blob = createImportBlob(parent, data, { authPolicy: policy, random: counterRandom() });
    const pub = unmarshalTpm2bPublic(blob.public);
    expect(objectName(pub).equals(blob.name)).toBe(true);
    const priv = unmarshalTpm2bPrivate(blob.duplicate);
    const seed = recoverSeed(parent, privateKey, 'DUPLICATE', unmarshalTpm2bEncryptedSecret(blob.inSymSeed));
    const sensitive = unmarshalTpm2bSensitive(unwrap(seed, blob.name, priv.integrityOuter, priv.encrypted));
    expect(sensitive.sensitiveType).toBe(TPM_ALG_ID.TPM_ALG_KEYEDHASH);
    expect(sensitive.authValue).toHaveLength(0);
    expect(sensitive.sensitive.equals(data)).toBe(true);
    // seedValue is the first draw: digest-size bytes 01..20; unique binds it to the data.
    expect(sensitive.seedValue.toString('hex')).toBe(Buffer.from(Array.from({ length: 32 }, (_, i) => i + 1)).toString('hex'));
    expect(pub.unique).toEqual(digest(TPM_ALG_ID.TPM_ALG_SHA256, sensitive.seedValue, data));
  });

  it('lays out the public area (Part 2 §12.2.4, keyedHash with a NULL scheme): 0008 000b 00000080 0020 <policy> 0010 0020 <unique>', () => {
    const blob = createImportBlob(RSA_EK, Buffer.from('x'), { authPolicy: policy });
    expect(blob.public.readUInt16BE(0)).toBe(78);
    const area = blob.public.subarray(2).toString('hex');
    expect(area.slice(0, 20)).toBe('0008000b000000800020');
    expect(area.slice(20, 84)).toBe(policy.toString('hex'));
    expect(area.slice(84, 92)).toBe('00100020');
    expect(area).toHaveLength(156);
  });

  it('without a policy sets userWithAuth (0x40) and an empty authPolicy', () => {
    const blob = createImportBlob(ECC_EK, Buffer.from('x'));
    expect(blob.public.subarray(2, 12).toString('hex')).toBe('0008000b000000400000');
    expect(blob.objectPublic.authPolicy).toHaveLength(0);
  });

  it('takes 128 bytes and refuses 129 with SealedDataTooLargeError naming MAX_SYM_DATA', () => {
    expect(() => createImportBlob(RSA_EK, Buffer.alloc(128))).not.toThrow();
    const attempt = (): unknown => createImportBlob(RSA_EK, Buffer.alloc(129));
    expect(attempt).toThrow(SealedDataTooLargeError);
    expect(attempt).toThrow('sealed data of 129 bytes exceeds MAX_SYM_DATA (128 bytes)');
  });

  it('refuses an authPolicy of the wrong size and a parent that is not a storage key', () => {
    expect(() => createImportBlob(RSA_EK, Buffer.alloc(1), { authPolicy: Buffer.alloc(20) })).toThrow(AuthPolicySizeError);
    expect(() => createImportBlob(tpmtPublicFromKey(rsaEk.publicKey, AK_TEMPLATE_RSA), Buffer.alloc(1))).toThrow(ProtectorKeyError);
  });
});
