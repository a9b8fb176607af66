import { EkCertificateFormatError, extractEkCertificate } from './ek-certificates';

/**
 * The repairs of ek-certificates.ts (NV header, trailing padding or data) on synthetic index
 * contents. A fake "certificate" is any DER SEQUENCE: only its extent matters here (X.509 parsing
 * is the caller's business).
 */
const sequence = (contentLength: number): Buffer => {
  const content = Buffer.alloc(contentLength, 0x5a);
  if (contentLength < 0x80) {
    return Buffer.concat([Buffer.from([0x30, contentLength]), content]);
  }
  const length = contentLength < 0x100 ? Buffer.from([0x81, contentLength]) : Buffer.from([0x82, contentLength >> 8, contentLength & 0xff]);
  return Buffer.concat([Buffer.from([0x30]), length, content]);
};

const header = (length: number) => Buffer.from([0x10, 0x01, 0x00, length >> 8, length & 0xff]);

describe('EK certificate index content', () => {
  const der = sequence(1012); // 30 82 03 f4 …: 1016 bytes, the size of swtpm's RSA EK certificate

  it('keeps a bare certificate as it is', () => {
    expect(extractEkCertificate(der)).toEqual({ der, quirks: [] });
  });

  it.each([
    ['0xFF padding (ST33: to 1600 bytes)', Buffer.concat([der, Buffer.alloc(584, 0xff)]), ['trailing-padding']],
    ['zero padding', Buffer.concat([der, Buffer.alloc(8)]), ['trailing-padding']],
    ['an NV header', Buffer.concat([header(der.length), der]), ['nv-header']],
    ['an NV header and padding after it', Buffer.concat([header(der.length), der, Buffer.alloc(100, 0xff)]), ['nv-header', 'trailing-padding']],
    ['an NV header whose length includes padding', Buffer.concat([header(der.length + 4), der, Buffer.alloc(4, 0xff)]), ['nv-header', 'trailing-padding']],
    ['other bytes after it (kept apart from padding)', Buffer.concat([der, Buffer.from('ff00ff', 'hex')]), ['trailing-data']],
    ['short-form and one-octet lengths', sequence(100), []],
  ])('strips %s', (_label, nvData, quirks) => {
    const result = extractEkCertificate(nvData);
    expect(result.quirks).toEqual(quirks);
    expect(result.der).toEqual(nvData.subarray(0, 1).equals(Buffer.from([0x10])) ? der : nvData.subarray(0, result.der.length));
    expect(result.der[0]).toBe(0x30);
  });

  it.each([
    ['an empty index', Buffer.alloc(0), '0 byte(s) cannot hold a certificate'],
    ['an erased index', Buffer.alloc(64, 0xff), 'starts with 0xff, not a DER SEQUENCE (0x30)'],
    ['a truncated certificate', der.subarray(0, 900), 'DER certificate of 1016 bytes truncated to 900'],
    ['an NV header longer than the index', Buffer.concat([header(2000), der]), 'NV header announces 2000 bytes, only 1016 follow'],
    ['indefinite length (BER)', Buffer.from([0x30, 0x80, 0, 0]), 'indefinite length is not DER'],
    ['a huge length', Buffer.from([0x30, 0x85, 1, 2, 3, 4, 5]), "a 5-octet length is not a certificate's"],
  ])('refuses %s, naming the index', (_label, nvData, reason) => {
    expect(() => extractEkCertificate(nvData, 0x01c00002)).toThrow(new EkCertificateFormatError(0x01c00002, reason));
    expect(() => extractEkCertificate(nvData, 0x01c00002)).toThrow(`EK certificate index 0x01c00002: ${reason}`);
  });
});
