import { AttestationError } from './attestation-errors';
import { canonicalRegistrationId, decodeField } from './wire-input';

describe('decodeField', () => {
  it('decodes standard padded base64 within the limit', () => {
    expect(decodeField('nonce', Buffer.alloc(32, 7).toString('base64'), 32, 32)).toEqual(Buffer.alloc(32, 7));
    expect(decodeField('x', 'AQID', 8)).toEqual(Buffer.from([1, 2, 3]));
  });

  it.each([
    ['not a string', 42, 'f must be a non-empty base64 string'],
    ['empty', '', 'f must be a non-empty base64 string'],
    ['base64url', 'A-_A', 'f must be base64 of at most 8 bytes'],
    ['unpadded', 'AQI', 'f must be base64 of at most 8 bytes'],
    ['with whitespace', 'AQ ID', 'f must be base64 of at most 8 bytes'],
    ['longer than the limit (refused before decoding)', 'A'.repeat(1000), 'f must be base64 of at most 8 bytes'],
    ['one byte too many', Buffer.alloc(9).toString('base64'), 'f must be at most 8 bytes, not 9'],
  ])('refuses %s as attestation.malformed naming the field', (_label, value, message) => {
    let caught: unknown;
    try {
      decodeField('f', value, 8);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(AttestationError);
    expect(caught).toMatchObject({ code: 'attestation.malformed', message });
  });

  it('refuses a value of another exact size', () => {
    expect(() => decodeField('activationProof', Buffer.alloc(31).toString('base64'), 32, 32)).toThrow('activationProof must be 32 bytes, not 31');
  });
});

describe('canonicalRegistrationId', () => {
  it('accepts a UUID in any case and answers it in lower case (RFC 9562 §4)', () => {
    expect(canonicalRegistrationId('0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0')).toBe('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0');
    expect(canonicalRegistrationId('0f1e2d3c-4B5a-6978-8796-a5b4c3d2e1f0')).toBe('0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0');
  });

  it.each(['', 'not-a-uuid', '0f1e2d3c4b5a697887 96a5b4c3d2e1f0', '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 ', '0g1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0', '０f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0'])(
    'refuses %j',
    (value) => {
      expect(canonicalRegistrationId(value)).toBeUndefined();
    },
  );
});
