import { DerError, readTlv, TAG } from './der';
import { EkCertificateError, type EkQuirk } from './errors';

/** A certificate as handed in: raw bytes (DER, an NV dump, a PEM or base64 file) or text. */
export type CertificateInput = Uint8Array | string;

/** How the certificate was encoded in the input. */
export type CertificateFormat = 'der' | 'pem' | 'base64';

/** One certificate's DER TLV, cut out of whatever surrounded it. */
export interface UnwrappedCertificate {
  readonly der: Buffer;
  readonly format: CertificateFormat;
  /** What was removed around the DER: `nv-header`, `trailing-padding`, `trailing-data`. */
  readonly quirks: readonly EkQuirk[];
}

/** TCG PC Client NV certificate header: tag 0x1001, fullCert 0x00, u16 certificate size. */
const NV_HEADER = Buffer.from([0x10, 0x01, 0x00]);
const NV_HEADER_LENGTH = 5;

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \1-----/g;
const PEM_CERTIFICATE_LABELS = new Set(['CERTIFICATE', 'X509 CERTIFICATE']);
const BASE64 = /^[A-Za-z0-9+/\-_]+={0,2}$/;

function toBuffer(input: CertificateInput): Buffer {
  if (typeof input === 'string') {
    return Buffer.from(input, 'utf8');
  }
  return Buffer.isBuffer(input) ? input : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
}

/**
 * Cuts the first DER TLV out of binary certificate data: after an optional NV header, keeping only
 * the first TLV (ST33 TPMs pad the NV index with 0xFF up to 1600 bytes; others with zeros). The only
 * such reader in rackseal: libs/tpm2 returns EK certificate indices whole, and the agent unwraps them here.
 * The header's declared length must cover the certificate (a shorter one contradicts the DER, so we
 * cannot tell which is cut: refused) but may exceed the bytes that follow (a dump that stops after the
 * certificate): the DER's own length decides, and the signature covers exactly those bytes.
 */
function unwrapBinary(bytes: Buffer, format: CertificateFormat): UnwrappedCertificate {
  const quirks: EkQuirk[] = [];
  let body = bytes;
  if (bytes.length > NV_HEADER_LENGTH && bytes.subarray(0, 3).equals(NV_HEADER)) {
    const declared = bytes.readUInt16BE(3);
    body = bytes.subarray(NV_HEADER_LENGTH);
    quirks.push('nv-header');
    let tlvLength: number;
    try {
      tlvLength = readTlv(body, 0, 'Certificate').raw.length;
    } catch (error) {
      throw new EkCertificateError('malformed', `NV header is followed by no complete DER element: ${(error as DerError).message}`);
    }
    if (declared < tlvLength) {
      throw new EkCertificateError('malformed', `NV header declares ${declared} bytes but the certificate is ${tlvLength}`);
    }
  }
  if (body[0] !== TAG.SEQUENCE) {
    throw new EkCertificateError('not-a-certificate', 'not DER (no SEQUENCE), PEM or base64');
  }
  let end: number;
  try {
    end = readTlv(body, 0, 'Certificate').end;
  } catch (error) {
    if (error instanceof DerError) {
      throw new EkCertificateError('malformed', `truncated or malformed DER: ${error.message}`);
    }
    throw error;
  }
  const rest = body.subarray(end);
  if (rest.length > 0) {
    const padding = rest.every((b) => b === 0xff) || rest.every((b) => b === 0x00);
    quirks.push(padding ? 'trailing-padding' : 'trailing-data');
  }
  return { der: body.subarray(0, end), format, quirks };
}

/** Base64 (either alphabet: node's decoder takes `-_` as well as `+/`), whitespace ignored. */
function decodeBase64(text: string): Buffer | undefined {
  // A CSV cell is one unbroken line: test it as is before paying for a whitespace-free copy.
  const compact = BASE64.test(text) ? text : text.replace(/\s+/g, '');
  if (compact.length === 0 || (compact !== text && !BASE64.test(compact))) {
    return undefined;
  }
  return Buffer.from(compact, 'base64');
}

function isBinaryCertificateStart(bytes: Buffer): boolean {
  return bytes[0] === TAG.SEQUENCE || (bytes.length > NV_HEADER_LENGTH && bytes.subarray(0, 3).equals(NV_HEADER));
}

/**
 * Every certificate in the input: each CERTIFICATE block of a PEM bundle (text around the blocks,
 * such as `openssl x509 -text` output, is ignored), or the one certificate of DER / base64 DER / an
 * NV dump. Throws EkCertificateError when there is none or one is unreadable.
 */
export function unwrapCertificates(input: CertificateInput): UnwrappedCertificate[] {
  if (typeof input === 'string' && BASE64.test(input)) {
    // The bulk path (a base64 DER CSV cell): no UTF-8 copy of the text and back.
    const decoded = decodeBase64(input)!;
    if (isBinaryCertificateStart(decoded)) {
      return [unwrapBinary(decoded, 'base64')];
    }
  }
  const bytes = toBuffer(input);
  if (bytes.length === 0) {
    throw new EkCertificateError('not-a-certificate', 'empty input');
  }
  if (isBinaryCertificateStart(bytes)) {
    return [unwrapBinary(bytes, 'der')];
  }
  const text = bytes.toString('latin1');
  if (text.includes('-----BEGIN ')) {
    const found: UnwrappedCertificate[] = [];
    for (const match of text.matchAll(PEM_BLOCK)) {
      if (!PEM_CERTIFICATE_LABELS.has(match[1]!)) {
        continue;
      }
      const body = decodeBase64(match[2]!);
      if (body === undefined || body.length === 0) {
        throw new EkCertificateError('malformed', `PEM block #${found.length + 1} is not valid base64`);
      }
      found.push(unwrapBinary(body, 'pem'));
    }
    if (found.length === 0) {
      throw new EkCertificateError('not-a-certificate', 'PEM input holds no CERTIFICATE block');
    }
    return found;
  }
  const decoded = decodeBase64(text);
  if (decoded !== undefined && isBinaryCertificateStart(decoded)) {
    return [unwrapBinary(decoded, 'base64')];
  }
  throw new EkCertificateError('not-a-certificate', 'not DER, PEM or base64 DER');
}

/** Exactly one certificate (an EK certificate file, a CSV cell). */
export function unwrapCertificate(input: CertificateInput): UnwrappedCertificate {
  const all = unwrapCertificates(input);
  if (all.length !== 1) {
    throw new EkCertificateError('not-a-certificate', `expected one certificate, found ${all.length} PEM blocks`);
  }
  return all[0]!;
}
