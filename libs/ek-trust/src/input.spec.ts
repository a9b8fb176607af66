import { EkCertificateError } from './errors';
import { unwrapCertificate } from './input';

/**
 * Finding the certificate in what an EK certificate NV index holds (TCG EK Credential Profile: the
 * index holds the DER certificate; shipping TPMs add the TCG NV header `10 01 00` ‖ u16 length, or
 * pad the index). This is the one implementation: libs/tpm2 returns the index whole, and the agent,
 * the CLI and the control plane all unwrap here. These cases were libs/tpm2's own before; a fake
 * "certificate" is any DER SEQUENCE, as only its extent matters when unwrapping.
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

describe('EK certificate NV index content', () => {
  const der = sequence(1012); // 30 82 03 f4 …: 1016 bytes, the size of swtpm's RSA EK certificate

  it('keeps a bare certificate as it is', () => {
    expect(unwrapCertificate(der)).toEqual({ der, format: 'der', quirks: [] });
  });

  it.each([
    ['0xFF padding (ST33: to 1600 bytes)', Buffer.concat([der, Buffer.alloc(584, 0xff)]), ['trailing-padding']],
    ['zero padding', Buffer.concat([der, Buffer.alloc(8)]), ['trailing-padding']],
    ['an NV header', Buffer.concat([header(der.length), der]), ['nv-header']],
    ['an NV header and padding after it', Buffer.concat([header(der.length), der, Buffer.alloc(100, 0xff)]), ['nv-header', 'trailing-padding']],
    ['an NV header whose length includes padding', Buffer.concat([header(der.length + 4), der, Buffer.alloc(4, 0xff)]), ['nv-header', 'trailing-padding']],
    // The header's length is a hint; the DER's own length decides, and the signature covers the DER.
    // A header announcing more than the index holds (a dump cut after the certificate) is tolerated.
    ['an NV header announcing more bytes than follow', Buffer.concat([header(2000), der]), ['nv-header']],
    ['an NV header announcing more bytes than follow, and padding', Buffer.concat([header(2000), der, Buffer.alloc(579, 0xff)]), ['nv-header', 'trailing-padding']],
    ['other bytes after it (kept apart from padding)', Buffer.concat([der, Buffer.from('ff00ff', 'hex')]), ['trailing-data']],
  ])('strips %s', (_label, nvData, quirks) => {
    const result = unwrapCertificate(nvData);
    expect(result.quirks).toEqual(quirks);
    expect(result.der).toEqual(der);
    expect(result.format).toBe('der');
  });

  it('reads short-form and one-octet lengths', () => {
    expect(unwrapCertificate(sequence(100))).toEqual({ der: sequence(100), format: 'der', quirks: [] });
    expect(unwrapCertificate(Buffer.concat([sequence(20), Buffer.alloc(3)]))).toEqual({ der: sequence(20), format: 'der', quirks: ['trailing-padding'] });
  });

  it.each([
    ['an empty index', Buffer.alloc(0), 'not-a-certificate', 'empty input'],
    ['an erased index', Buffer.alloc(64, 0xff), 'not-a-certificate', 'not DER, PEM or base64 DER'],
    ['a truncated certificate', der.subarray(0, 900), 'malformed', 'truncated or malformed DER: Certificate at offset 0: length 1012 runs past the end of the enclosing data (896 bytes left)'],
    ['an NV header declaring fewer bytes than the certificate', Buffer.concat([header(1000), der]), 'malformed', 'NV header declares 1000 bytes but the certificate is 1016'],
    ['an NV header followed by no certificate', Buffer.concat([header(1016), Buffer.alloc(1016, 0xff)]), 'malformed', 'NV header is followed by no complete DER element'],
    ['indefinite length (BER)', Buffer.from([0x30, 0x80, 0, 0]), 'malformed', 'indefinite'],
    ['a huge length', Buffer.from([0x30, 0x85, 1, 2, 3, 4, 5]), 'malformed', 'Certificate at offset 0'],
  ])('refuses %s', (_label, nvData, code, message) => {
    let thrown: unknown;
    try {
      unwrapCertificate(nvData);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(EkCertificateError);
    expect((thrown as EkCertificateError).code).toBe(code);
    expect((thrown as EkCertificateError).message).toContain(message);
  });
});
