import { randomBytes } from 'node:crypto';
import { formatAuthorization, MAX_AUTHORIZATION_CHARS, NodeRequestRefusal, parseAuthorization, parseContentDigest } from './index';

const ID = '0123456789abcdef0123456789abcdef';
const NONCE = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
const SIGNATURE = Buffer.alloc(32, 0xab);
const NONCE_TEXT = NONCE.toString('base64url'); // AAECAwQFBgcICQoLDA0ODw
const SIGNATURE_TEXT = SIGNATURE.toString('base64url');
const GOOD = formatAuthorization(ID, 1796212800, NONCE, SIGNATURE);

function refused(value: string): NodeRequestRefusal {
  try {
    parseAuthorization(value);
  } catch (error) {
    expect(error).toBeInstanceOf(NodeRequestRefusal);
    return error as NodeRequestRefusal;
  }
  throw new Error(`expected ${JSON.stringify(value.slice(0, 80))} to be refused`);
}

describe('parseAuthorization', () => {
  it('reads what formatAuthorization writes', () => {
    expect(GOOD).toBe(`RackSeal-HMAC-SHA256 Credential=${ID}, Timestamp=1796212800, Nonce=${NONCE_TEXT}, Signature=${SIGNATURE_TEXT}`);
    const parsed = parseAuthorization(GOOD);
    expect(parsed.credentialId).toBe(ID);
    expect(parsed.timestamp).toBe(1796212800);
    expect(parsed.nonce).toBe(NONCE_TEXT);
    expect(parsed.nonceBytes.equals(NONCE)).toBe(true);
    expect(parsed.signature.equals(SIGNATURE)).toBe(true);
  });

  it('takes the parameters in any order and the scheme in any case (RFC 9110 §11.1)', () => {
    const reordered = `rackseal-hmac-sha256 Signature=${SIGNATURE_TEXT}, Nonce=${NONCE_TEXT}, Timestamp=0, Credential=${ID}`;
    expect(parseAuthorization(reordered)).toMatchObject({ credentialId: ID, timestamp: 0 });
  });

  it.each([
    ['another scheme', 'Bearer abc', 'missing-credential', /is not a RackSeal-HMAC-SHA256 node credential/],
    ['the scheme alone', 'RackSeal-HMAC-SHA256', 'malformed', /a parameter without a value/],
    ['Credential missing', `RackSeal-HMAC-SHA256 Timestamp=1, Nonce=${NONCE_TEXT}, Signature=${SIGNATURE_TEXT}`, 'malformed', /lacks Credential$/],
    ['Nonce and Signature missing', `RackSeal-HMAC-SHA256 Credential=${ID}, Timestamp=1`, 'malformed', /lacks Nonce, Signature$/],
    ['Timestamp twice', `${GOOD}, Timestamp=1796212801`, 'malformed', /has Timestamp twice/],
    ['Credential twice', `${GOOD}, Credential=${ID}`, 'malformed', /has Credential twice/],
    ['an unknown parameter', `${GOOD}, Realm=x`, 'malformed', /an unknown parameter; it takes Credential, Timestamp, Nonce, Signature/],
    ['a lower-case parameter name', GOOD.replace('Nonce=', 'nonce='), 'malformed', /unknown parameter/],
    ['no space after a comma', GOOD.replace(', Timestamp', ',Timestamp'), 'malformed', /lacks Timestamp$/],
    ['a trailing comma', `${GOOD},`, 'malformed', /Signature is not 32 bytes of unpadded base64url/],
    ['quoted values', GOOD.replace(`Credential=${ID}`, `Credential="${ID}"`), 'malformed', /Credential is not 32 lower-case hex/],
    ['an upper-case credential ID', GOOD.replace(ID, ID.toUpperCase()), 'malformed', /Credential is not 32 lower-case hex/],
    ['a short credential ID', GOOD.replace(ID, ID.slice(2)), 'malformed', /Credential is not/],
    ['a negative timestamp', GOOD.replace('Timestamp=1796212800', 'Timestamp=-1'), 'malformed', /Timestamp is not Unix seconds/],
    ['a timestamp with a leading zero', GOOD.replace('Timestamp=1796212800', 'Timestamp=01796212800'), 'malformed', /Timestamp/],
    ['a fractional timestamp', GOOD.replace('Timestamp=1796212800', 'Timestamp=1796212800.5'), 'malformed', /Timestamp/],
    ['a 13-digit timestamp', GOOD.replace('Timestamp=1796212800', 'Timestamp=1796212800000'), 'malformed', /Timestamp/],
    ['a padded nonce', GOOD.replace(NONCE_TEXT, `${NONCE_TEXT}==`), 'malformed', /Nonce is not 16 bytes of unpadded base64url/],
    ['a nonce in standard base64 (+ and /)', GOOD.replace(NONCE_TEXT, '+/' + NONCE_TEXT.slice(2)), 'malformed', /Nonce is not 16 bytes/],
    ['a non-canonical nonce (unused bits set)', GOOD.replace(NONCE_TEXT, NONCE_TEXT.slice(0, -1) + 'x'), 'malformed', /Nonce is not 16 bytes/],
    ['a nonce of 15 bytes', GOOD.replace(NONCE_TEXT, NONCE.subarray(0, 15).toString('base64url')), 'malformed', /Nonce is not 16 bytes/],
    ['a signature of 31 bytes', GOOD.replace(SIGNATURE_TEXT, SIGNATURE.subarray(0, 31).toString('base64url')), 'malformed', /Signature is not 32 bytes/],
    ['a signature with a dot', GOOD.replace(SIGNATURE_TEXT, SIGNATURE_TEXT.slice(0, -1) + '.'), 'malformed', /Signature is not 32 bytes/],
    ['a NUL byte', GOOD.replace('Timestamp', 'Time\0stamp'), 'malformed', /holds a control or non-ASCII character/],
    ['a line feed', `${GOOD}\nX-Injected: 1`, 'malformed', /control or non-ASCII/],
    ['a tab', GOOD.replace(' Credential', '\tCredential'), 'malformed', /control or non-ASCII/],
    ['non-ASCII text', GOOD.replace('Credential', 'Credentiäl'), 'malformed', /control or non-ASCII/],
    ['a value over the length limit', `${GOOD}, ${'X'.repeat(MAX_AUTHORIZATION_CHARS)}`, 'malformed', /longer than 512 characters/],
    ['a huge value', 'RackSeal-HMAC-SHA256 ' + 'Credential=a, '.repeat(100_000), 'malformed', /longer than 512 characters/],
  ])('refuses %s, naming the problem', (_name, value, reason, message) => {
    const error = refused(value);
    expect(error.reason).toBe(reason);
    expect(error.message).toMatch(message);
  });

  it('keeps a refusal message free of the header value it refused', () => {
    const error = refused(GOOD.replace(SIGNATURE_TEXT, SIGNATURE_TEXT.slice(0, -1) + '.'));
    expect(error.message).not.toContain(SIGNATURE_TEXT.slice(0, 20));
  });

  it('throws nothing but NodeRequestRefusal for random input', () => {
    const alphabet = 'RackSeal-HMAC-SHA256 Credential=Timestamp,Nonce Signature=0af_-+/=\0\n"ä';
    for (let i = 0; i < 2000; i += 1) {
      const bytes = randomBytes(1 + (i % 200));
      let value = i % 2 === 0 ? 'RackSeal-HMAC-SHA256 ' : '';
      for (const byte of bytes) {
        value += alphabet[byte % alphabet.length];
      }
      try {
        parseAuthorization(value);
      } catch (error) {
        expect(error).toBeInstanceOf(NodeRequestRefusal);
      }
    }
  });
});

describe('parseContentDigest', () => {
  const digest = Buffer.alloc(32, 0xfe);
  const good = `sha-256=:${digest.toString('base64')}:`;

  it('reads the SHA-256 digest of RFC 9530 §2', () => {
    expect(parseContentDigest(good).equals(digest)).toBe(true);
  });

  it.each([
    ['no colons', `sha-256=${digest.toString('base64')}`],
    ['base64url instead of base64', `sha-256=:${Buffer.alloc(32, 0xff).toString('base64url')}:`],
    ['a second algorithm', `${good}, sha-512=:AAAA:`],
    ['upper-case algorithm', good.replace('sha-256', 'SHA-256')],
    ['a non-canonical last character', good.replace(/.=:$/, 'x=:')],
    ['a NUL', good.replace('sha', 's\0a')],
    ['a huge value', 'sha-256=:' + 'A'.repeat(10_000) + ':'],
  ])('refuses %s as malformed', (_name, value) => {
    expect(() => parseContentDigest(value, ID)).toThrow(NodeRequestRefusal);
    try {
      parseContentDigest(value, ID);
    } catch (error) {
      expect((error as NodeRequestRefusal).reason).toBe('malformed');
      expect((error as NodeRequestRefusal).credentialId).toBe(ID);
    }
  });
});
