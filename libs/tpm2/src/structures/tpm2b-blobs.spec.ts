import { TpmParseError } from '../codec/tpm-parse-error';
import { marshalTpm2bEncryptedSecret, unmarshalTpm2bEncryptedSecret } from './tpm2b-encrypted-secret';
import { marshalTpm2bIdObject, unmarshalTpm2bIdObject } from './tpm2b-id-object';
import { marshalTpm2bPrivate, unmarshalTpm2bPrivate } from './tpm2b-private';

// Shapes as tpm2-tools and swtpm produce them (credential: Part 1 §24.4; duplicate: Part 1 §23.3.2):
// a 0x0044 credential blob for a 32-byte credential under a SHA-256 EK, a 256-byte RSA-2048 secret, a
// SHA-256 outer-wrapped duplicate.
const hmac = 'c3'.repeat(32);
const ID_OBJECT = Buffer.from(`0044` + `0020${hmac}` + '9e'.repeat(34), 'hex');
const RSA_SECRET = Buffer.concat([Buffer.from('0100', 'hex'), Buffer.alloc(256, 0x77)]);
const PRIVATE = Buffer.from(`0070` + `0020${hmac}` + '11'.repeat(78), 'hex');

describe('TPM2B_ID_OBJECT (Part 2 §12.4.3)', () => {
  it('splits integrityHMAC from encIdentity and marshals back byte for byte', () => {
    const parsed = unmarshalTpm2bIdObject(ID_OBJECT);
    expect(parsed.integrityHMAC.toString('hex')).toBe(hmac);
    expect(parsed.encIdentity).toHaveLength(34);
    expect(marshalTpm2bIdObject(parsed).equals(ID_OBJECT)).toBe(true);
  });

  it('refuses a size over sizeof(TPMS_ID_OBJECT), an HMAC running past the content, and trailing bytes', () => {
    expect(() => unmarshalTpm2bIdObject(Buffer.from('0085', 'hex'))).toThrow(new TpmParseError('TPM2B_ID_OBJECT', 'credential.size', 0, '133 exceeds the maximum of 132'));
    expect(() => unmarshalTpm2bIdObject(Buffer.from('00030030aa', 'hex'))).toThrow(TpmParseError);
    expect(() => unmarshalTpm2bIdObject(Buffer.concat([ID_OBJECT, Buffer.alloc(1)]))).toThrow(/1 trailing byte/);
  });
});

describe('TPM2B_ENCRYPTED_SECRET (Part 2 §11.4.34)', () => {
  it('round-trips an RSA-2048 secret', () => {
    const secret = unmarshalTpm2bEncryptedSecret(RSA_SECRET);
    expect(secret).toHaveLength(256);
    expect(marshalTpm2bEncryptedSecret(secret).equals(RSA_SECRET)).toBe(true);
  });

  it('refuses more than MAX_RSA_KEY_BYTES and truncation', () => {
    expect(() => unmarshalTpm2bEncryptedSecret(Buffer.from('0201', 'hex'))).toThrow(/513 exceeds the maximum of 512/);
    expect(() => unmarshalTpm2bEncryptedSecret(RSA_SECRET.subarray(0, 200))).toThrow(TpmParseError);
  });
});

describe('TPM2B_PRIVATE (Part 2 §12.3.5)', () => {
  it('splits integrityOuter from the encrypted sensitive area and marshals back byte for byte', () => {
    const parsed = unmarshalTpm2bPrivate(PRIVATE);
    expect(parsed.integrityOuter.toString('hex')).toBe(hmac);
    expect(parsed.encrypted).toHaveLength(78);
    expect(marshalTpm2bPrivate(parsed).equals(PRIVATE)).toBe(true);
  });

  it('refuses an integrityOuter over 64 bytes and trailing bytes', () => {
    expect(() => unmarshalTpm2bPrivate(Buffer.from(`00430041${'00'.repeat(65)}`, 'hex'))).toThrow(
      new TpmParseError('_PRIVATE', 'integrityOuter.size', 0, '65 exceeds the maximum of 64'),
    );
    expect(() => unmarshalTpm2bPrivate(Buffer.concat([PRIVATE, Buffer.alloc(2)]))).toThrow(/2 trailing byte/);
  });
});
