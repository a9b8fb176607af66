import { parseVendorCaRef, VendorCaInputError } from './vendor-cas';

describe('parseVendorCaRef', () => {
  const fp = 'ab'.repeat(32);

  it('reads fingerprints in any case, with or without colons, and ids', () => {
    expect(parseVendorCaRef(fp)).toEqual({ fingerprint: fp });
    expect(parseVendorCaRef(fp.toUpperCase())).toEqual({ fingerprint: fp });
    expect(parseVendorCaRef(` ${fp.toUpperCase().replace(/(..)(?!$)/g, '$1:')} `)).toEqual({ fingerprint: fp });
    expect(parseVendorCaRef('0F8E2B4C-1D3A-4B5C-9D7E-123456789ABC')).toEqual({ id: '0f8e2b4c-1d3a-4b5c-9d7e-123456789abc' });
  });

  it('refuses anything else, naming it', () => {
    for (const text of ['', 'ab', fp.slice(1), `${fp}00`, 'g'.repeat(64), "'; DROP TABLE vendor_cas; --"]) {
      expect(() => parseVendorCaRef(text)).toThrow(VendorCaInputError);
    }
    expect(() => parseVendorCaRef('xyz')).toThrow('"xyz" is neither a SHA-256 fingerprint (64 hex digits) nor a CA id (uuid)');
  });
});
