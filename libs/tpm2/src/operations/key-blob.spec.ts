import { TpmParseError } from '../codec/tpm-parse-error';
import { TPM_RH } from '../constants';
import { objectName } from '../names';
import { CERTIFIED_DECRYPT_KEY_TEMPLATE, EK_TEMPLATE_ECC_L2, EK_TEMPLATE_RSA_L1 } from '../templates';
import { marshalTpm2bPublic, unmarshalTpm2bPublic } from '../structures/tpmt-public';
import { applyEkNonce } from './endorsement-key';
import { KEY_BLOB_MAGIC, type KeyBlob, KeyBlobFormatError, marshalKeyBlob, unmarshalKeyBlob } from './key-blob';
import { publicShape, sameShape } from './loaded-object';
import { SRK_TEMPLATE_RSA } from '../templates';
import { SRK_PERSISTENT_HANDLE } from './storage-primary';

const keyPublic = unmarshalTpm2bPublic(marshalTpm2bPublic({ ...CERTIFIED_DECRYPT_KEY_TEMPLATE, unique: Buffer.alloc(256, 0x5a) }));
const blob: KeyBlob = {
  parent: { hierarchy: TPM_RH.TPM_RH_OWNER, template: SRK_TEMPLATE_RSA, name: objectName({ ...SRK_TEMPLATE_RSA, unique: Buffer.alloc(256, 1) }) },
  public: keyPublic,
  private: { integrityOuter: Buffer.alloc(32, 2), encrypted: Buffer.alloc(200, 3) },
};

describe('key blobs (versioned TPM2B_PUBLIC + TPM2B_PRIVATE + parent)', () => {
  it('round-trips byte for byte, with and without a persistent parent handle', () => {
    for (const b of [blob, { ...blob, parent: { ...blob.parent, persistentHandle: SRK_PERSISTENT_HANDLE } }]) {
      const bytes = marshalKeyBlob(b);
      const back = unmarshalKeyBlob(bytes);
      expect(marshalKeyBlob(back).equals(bytes)).toBe(true);
      expect(back.parent.persistentHandle).toBe(b.parent.persistentHandle);
      expect(back.public.raw.equals(keyPublic.raw)).toBe(true);
      expect(back.private).toEqual(b.private);
    }
  });

  it('starts with "RSKB" and version 1, then the parent hierarchy, handle and Name', () => {
    const bytes = marshalKeyBlob(blob);
    expect(bytes.subarray(0, 4).toString('latin1')).toBe('RSKB');
    expect(bytes.readUInt32BE(0)).toBe(KEY_BLOB_MAGIC);
    expect(bytes.readUInt16BE(4)).toBe(1);
    expect(bytes.readUInt32BE(6)).toBe(TPM_RH.TPM_RH_OWNER);
    expect(bytes.readUInt32BE(10)).toBe(0);
    expect(bytes.subarray(16, 16 + 34).equals(blob.parent.name)).toBe(true);
  });

  it('refuses another magic, another version and trailing bytes', () => {
    const bytes = marshalKeyBlob(blob);
    const badMagic = Buffer.from(bytes);
    badMagic[0] = 0;
    expect(() => unmarshalKeyBlob(badMagic)).toThrow(KeyBlobFormatError);
    const v2 = Buffer.from(bytes);
    v2.writeUInt16BE(2, 4);
    expect(() => unmarshalKeyBlob(v2)).toThrow(/version 2 is not supported/);
    expect(() => unmarshalKeyBlob(Buffer.concat([bytes, Buffer.alloc(1)]))).toThrow(TpmParseError);
    expect(() => unmarshalKeyBlob(bytes.subarray(0, bytes.length - 1))).toThrow(TpmParseError);
  });
});

describe('template shapes and EK nonces', () => {
  it('a key matches its template\'s shape whatever its unique; another template does not', () => {
    const ek = { ...EK_TEMPLATE_RSA_L1, unique: Buffer.alloc(256, 0x77) };
    expect(sameShape(ek, EK_TEMPLATE_RSA_L1)).toBe(true);
    expect(sameShape(ek, SRK_TEMPLATE_RSA)).toBe(false);
    expect(publicShape(EK_TEMPLATE_ECC_L2).length).toBe(122 - 4 - 64);
  });

  it('EK Credential Profile nonce: at the start of unique, zero-padded (RSA modulus; ECC x, y all zeros)', () => {
    const nonce = Buffer.from('0102030405', 'hex');
    const rsa = applyEkNonce(EK_TEMPLATE_RSA_L1, nonce);
    expect(rsa.type === EK_TEMPLATE_RSA_L1.type && rsa.unique.equals(Buffer.concat([nonce, Buffer.alloc(251)]))).toBe(true);
    const ecc = applyEkNonce(EK_TEMPLATE_ECC_L2, nonce);
    expect(ecc.type === EK_TEMPLATE_ECC_L2.type && ecc.unique.x.equals(Buffer.concat([nonce, Buffer.alloc(27)])) && ecc.unique.y.equals(Buffer.alloc(32))).toBe(true);
    expect(() => applyEkNonce(EK_TEMPLATE_ECC_L2, Buffer.alloc(33))).toThrow(RangeError);
    // A parsed template's raw bytes must not survive: the Name and CreatePrimary use the new unique.
    const parsed = unmarshalTpm2bPublic(marshalTpm2bPublic(EK_TEMPLATE_ECC_L2));
    expect('raw' in applyEkNonce(parsed, nonce)).toBe(false);
  });
});
