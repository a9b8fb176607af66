import { randomBytes } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';
import {
  EnvelopeAuthenticationError,
  EnvelopeKeyMismatchError,
  EnvMasterKey,
  kekIdOfEnvelope,
  MasterKeys,
  openEnvelope,
  rewrapEnvelope,
  sealEnvelope,
} from '@rackseal/envelope';
import { MasterKeyUnavailableError, Pkcs11MasterKey, Pkcs11Token, readAttributes } from '@rackseal/master-keys';
import * as pkcs11js from 'pkcs11js';
import { createSoftHsmToken, type SoftHsmToken } from './support/softhsm';

const CONTEXT = 'node-credential:7d1f00aa';
const PLAINTEXT = Buffer.from('the bytes a node credential keys its HMAC with, 0123456789');

function thrown(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a refusal');
}

let softhsm: SoftHsmToken;

beforeAll(async () => {
  softhsm = await createSoftHsmToken();
});

afterAll(async () => {
  await softhsm?.remove();
});

describe('the pkcs11 master key on SoftHSM2', () => {
  let token: Pkcs11Token;
  let key: Pkcs11MasterKey;

  beforeAll(() => {
    token = Pkcs11Token.open(softhsm.settings);
    key = Pkcs11MasterKey.create(token, 'rackseal-master-key');
  });

  afterAll(() => {
    token?.close();
  });

  it('is generated on the token as a key that cannot leave it, and reading its value is refused', () => {
    const attributes = readAttributes(token, key.handle);
    expect(attributes).toMatchObject({ keyType: pkcs11js.CKK_AES, valueLen: 32, sensitive: true, alwaysSensitive: true, extractable: false, neverExtractable: true, encrypt: true, decrypt: true });
    expect(attributes.id.length).toBe(16);
    let code: number | undefined;
    try {
      token.pkcs11.C_GetAttributeValue(token.session, key.handle, [{ type: pkcs11js.CKA_VALUE }]);
    } catch (error) {
      code = (error as pkcs11js.Pkcs11Error).code;
    }
    expect(code).toBe(pkcs11js.CKR_ATTRIBUTE_SENSITIVE);
    // Nor may it be wrapped out under another key (CKA_EXTRACTABLE false, PKCS#11 v2.40 §5.16).
    const wrapper = token.pkcs11.C_GenerateKey(token.session, { mechanism: pkcs11js.CKM_AES_KEY_GEN }, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_VALUE_LEN, value: 32 },
      { type: pkcs11js.CKA_TOKEN, value: false },
      { type: pkcs11js.CKA_WRAP, value: true },
    ]);
    let wrapCode: number | undefined;
    try {
      token.pkcs11.C_WrapKey(token.session, { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD }, wrapper, key.handle, Buffer.alloc(64));
    } catch (error) {
      wrapCode = (error as pkcs11js.Pkcs11Error).code;
    }
    expect(wrapCode).toBe(pkcs11js.CKR_KEY_UNEXTRACTABLE);
  });

  it('round-trips an envelope, found again by its label in a new session, with a KEK ID that is not the env one', () => {
    const blob = sealEnvelope(key, CONTEXT, PLAINTEXT);
    expect(kekIdOfEnvelope(blob)).toBe(key.kekId.toString('hex'));
    const other = Pkcs11Token.open(softhsm.settings);
    try {
      const again = Pkcs11MasterKey.find(other, 'rackseal-master-key');
      expect(again.kekId.equals(key.kekId)).toBe(true);
      expect(openEnvelope(again, CONTEXT, blob).reveal().equals(PLAINTEXT)).toBe(true);
    } finally {
      other.close();
    }
    expect(blob.includes(PLAINTEXT)).toBe(false);
  });

  it('refuses a blob moved to another context, and a modified wrap, as authentication failures', () => {
    const blob = sealEnvelope(key, CONTEXT, PLAINTEXT);
    expect((thrown(() => openEnvelope(key, 'node-credential:7d1f00ab', blob)) as EnvelopeAuthenticationError).layer).toBe('data-key');
    for (const offset of [13, 30, 60]) {
      const flipped = Buffer.from(blob);
      flipped[offset] = (flipped[offset] ?? 0) ^ 1;
      expect((thrown(() => openEnvelope(key, CONTEXT, flipped)) as EnvelopeAuthenticationError).layer).toBe('data-key');
    }
    // The session still works after the token refused a tag.
    expect(openEnvelope(key, CONTEXT, blob).reveal().equals(PLAINTEXT)).toBe(true);
  });

  it('a blob under one provider does not open under the other', () => {
    const env = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const underEnv = sealEnvelope(env, CONTEXT, PLAINTEXT);
    const underToken = sealEnvelope(key, CONTEXT, PLAINTEXT);
    expect(thrown(() => openEnvelope(key, CONTEXT, underEnv))).toBeInstanceOf(EnvelopeKeyMismatchError);
    expect(thrown(() => openEnvelope(env, CONTEXT, underToken))).toBeInstanceOf(EnvelopeKeyMismatchError);
    // Even with the KEK ID forged to the other key's, the wrap does not verify.
    const forged = Buffer.from(underEnv);
    key.kekId.copy(forged, 1);
    expect((thrown(() => openEnvelope(key, CONTEXT, forged)) as EnvelopeAuthenticationError).layer).toBe('data-key');
  });

  it('re-wraps env → pkcs11 → another pkcs11 key, the data ciphertext unchanged', () => {
    const env = new EnvMasterKey(new SecretBytes(randomBytes(32)));
    const second = Pkcs11MasterKey.create(token, 'rackseal-master-key-2');
    expect(second.kekId.equals(key.kekId)).toBe(false);
    const blob = sealEnvelope(env, CONTEXT, PLAINTEXT);
    const onToken = rewrapEnvelope(env, key, CONTEXT, blob)!;
    const onSecond = rewrapEnvelope(new MasterKeys(key, [env]), second, CONTEXT, onToken)!;
    expect(onSecond.subarray(73).equals(blob.subarray(73))).toBe(true);
    expect(openEnvelope(second, CONTEXT, onSecond).reveal().equals(PLAINTEXT)).toBe(true);
    expect(thrown(() => openEnvelope(key, CONTEXT, onSecond))).toBeInstanceOf(EnvelopeKeyMismatchError);
  });

  it('refuses a second key of the same label, a missing label and an unknown token by name', () => {
    expect(thrown(() => Pkcs11MasterKey.create(token, 'rackseal-master-key')).message).toBe(
      `the PKCS#11 token "${softhsm.tokenLabel}" already has a key labelled "rackseal-master-key"`,
    );
    expect(thrown(() => Pkcs11MasterKey.find(token, 'absent')).message).toBe(
      `the PKCS#11 token "${softhsm.tokenLabel}" has no key labelled "absent" (create it once with \`rackseal master-key init\`)`,
    );
    expect(thrown(() => Pkcs11Token.open({ ...softhsm.settings, tokenLabel: 'nope' })).message).toMatch(/has no token\(s\) labelled "nope"/);
  });

  it('refuses, as a master key, a key that was ever extractable or readable', () => {
    token.pkcs11.C_CreateObject(token.session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_SECRET_KEY },
      { type: pkcs11js.CKA_KEY_TYPE, value: pkcs11js.CKK_AES },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_ENCRYPT, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: true },
      { type: pkcs11js.CKA_LABEL, value: 'imported' },
      { type: pkcs11js.CKA_VALUE, value: randomBytes(32) },
    ]);
    const error = thrown(() => Pkcs11MasterKey.find(token, 'imported'));
    expect(error).toBeInstanceOf(MasterKeyUnavailableError);
    expect(error.message).toMatch(/may not be a master key: .*CKA_ALWAYS_SENSITIVE is false/);
  });
});

describe('opening the token', () => {
  // Login state is per application and token (PKCS#11 v2.40 §5.6): the PIN is checked by the first
  // session of the process, so this runs after the block above closed its session.
  it('refuses a wrong PIN without echoing it', () => {
    const wrongPin = thrown(() => Pkcs11Token.open({ ...softhsm.settings, pin: new SecretBytes(Buffer.from('not-the-pin')) }));
    expect(wrongPin).toBeInstanceOf(MasterKeyUnavailableError);
    expect(wrongPin.message).toBe(`the PKCS#11 token "${softhsm.tokenLabel}" refused the login (PKCS11_PIN): CKR_PIN_INCORRECT`);
  });
});
