import type { DataSource } from 'typeorm';
import { parseVendorCaRef, PRINTABLE_LABEL, unprintableCharacter, VendorCaInputError, VendorCas } from './vendor-cas';

describe('parseVendorCaRef', () => {
  const fp = 'ab'.repeat(32);

  it('reads fingerprints in any case, with or without colons, and ids', () => {
    expect(parseVendorCaRef(fp)).toEqual({ fingerprint: fp });
    expect(parseVendorCaRef(fp.toUpperCase())).toEqual({ fingerprint: fp });
    expect(parseVendorCaRef(` ${fp.toUpperCase().replace(/(..)(?!$)/g, '$1:')} `)).toEqual({ fingerprint: fp });
    expect(parseVendorCaRef('0F8E2B4C-1D3A-4B5C-9D7E-123456789ABC')).toEqual({ id: '0f8e2b4c-1d3a-4b5c-9d7e-123456789abc' });
  });

  it('reads a prefix of 8 to 63 hex digits (the CLI prints 16), any case, colons allowed', () => {
    expect(parseVendorCaRef('ABABABAB')).toEqual({ fingerprintPrefix: 'abababab' });
    expect(parseVendorCaRef(fp.slice(0, 16))).toEqual({ fingerprintPrefix: fp.slice(0, 16) });
    expect(parseVendorCaRef('AB:AB:AB:AB:AB')).toEqual({ fingerprintPrefix: 'ababababab' });
    expect(parseVendorCaRef(fp.slice(1))).toEqual({ fingerprintPrefix: fp.slice(1) });
  });

  it('refuses anything else, naming the parameter, with control characters escaped', () => {
    for (const text of ['', 'ab', 'abababa', `${fp}00`, 'g'.repeat(64), "'; DROP TABLE vendor_cas; --", 'abababab%', 'abab_bab', `abababab\u0000`]) {
      expect(() => parseVendorCaRef(text)).toThrow(VendorCaInputError);
    }
    expect(() => parseVendorCaRef('xyz')).toThrow('fingerprint "xyz" is neither a SHA-256 fingerprint (64 hex digits, or a unique prefix of at least 8) nor a CA id (uuid)');
    expect(() => parseVendorCaRef('a\u0000b\u001b[31m')).toThrow('fingerprint "a\\u0000b\\u001b[31m" is neither');
  });
});

describe('labels (a CA\'s source)', () => {
  it('refuses C0/C1 controls, DEL, line separators and bidi controls, naming the first one', () => {
    expect(unprintableCharacter('IFX_RSA_RT.pem')).toBeUndefined();
    expect(unprintableCharacter('Zertifikat für Prüfung (2).pem')).toBeUndefined();
    expect(unprintableCharacter('a\u0000b')).toBe('contains the control character U+0000 at position 2');
    expect(unprintableCharacter('\u001b[31mred.pem')).toBe('contains the control character U+001B at position 1');
    for (const c of ['\n', '\r', '\t', '\u007f', '\u009b', '\u2028', '\u202e', '\u2066']) {
      expect(unprintableCharacter(`x${c}.pem`)).toMatch(/^contains the control character U\+[0-9A-F]{4} at position 2$/);
      expect(PRINTABLE_LABEL.test(`x${c}.pem`)).toBe(false);
    }
    expect(PRINTABLE_LABEL.test('vendor-bundle.pem')).toBe(true);
  });
});

describe('VendorCas.addBundle refuses a source label with control characters itself, before any database work', () => {
  // No database: a refusal must come from reading the call, never from PostgreSQL (which cannot
  // store NUL in text and would answer with an error the HTTP layer turns into a 500).
  const noDatabase = new Proxy({}, { get: () => { throw new Error('the database must not be touched'); } }) as DataSource;
  const unused = { append: () => Promise.reject(new Error('no audit')) };
  const cas = new VendorCas(noDatabase, unused, { now: () => new Date(0) } as never, {} as never);

  it.each([
    ['a NUL in a file name', { content: 'x', source: 'ca\u0000.pem' }, 'source name "ca\\u0000.pem" contains the control character U+0000 at position 3'],
    ['an ANSI escape', { content: 'x', source: '\u001b[2Jca.pem' }, 'source name "\\u001b[2Jca.pem" contains the control character U+001B at position 1'],
    ['a line break', { content: 'x', source: 'ca.pem\nfake line' }, 'source name "ca.pem\\nfake line" contains the control character U+000A at position 7'],
  ])('%s', async (_what, upload, message) => {
    await expect(cas.addBundle([upload], { addedBy: 'test' })).rejects.toThrow(new VendorCaInputError(message));
  });

  it('also for the call\'s default source', async () => {
    await expect(cas.addBundle(['x'], { addedBy: 'test', source: 'bundle\u202e.pem' })).rejects.toThrow(/contains the control character U\+202E/);
  });
});
