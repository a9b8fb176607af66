import { NODE_CREDENTIAL_ID_PATTERN } from './identifiers';
import { NodeRequestRefusal } from './node-identity-errors';

/**
 * The two headers of a signed node request, written and read strictly (docs/decisions.md, "Node
 * identity"):
 *
 *   Authorization: RackSeal-HMAC-SHA256 Credential=<32 hex>, Timestamp=<unix s>, Nonce=<22 base64url>, Signature=<43 base64url>
 *   Content-Digest: sha-256=:<44 base64>:
 *
 * The Authorization header follows the auth-param syntax of RFC 9110 §11.4 in one fixed spelling:
 * the four parameters once each, in any order, separated by ", ", values as tokens (no quotes). The
 * scheme is matched case-insensitively (RFC 9110 §11.1). Content-Digest is RFC 9530 §2 with the one
 * algorithm rackseal uses. Anything else is refused as `malformed` before any key is looked up; the
 * parser's work is bounded by the length limits, checked first, and it throws nothing but
 * NodeRequestRefusal.
 */

export const NODE_AUTH_SCHEME = 'RackSeal-HMAC-SHA256';

export const MAX_AUTHORIZATION_CHARS = 512;
export const MAX_CONTENT_DIGEST_CHARS = 128;

export const NODE_REQUEST_NONCE_BYTES = 16;
const SIGNATURE_BYTES = 32;
const SHA256_BYTES = 32;

/** Unix seconds: no sign, no leading zero, at most 12 digits (well past year 9999). */
const TIMESTAMP_PATTERN = /^(0|[1-9][0-9]{0,11})$/;
const BASE64URL_PATTERN = /^[A-Za-z0-9_-]+$/;
const CONTENT_DIGEST_PATTERN = /^sha-256=:([A-Za-z0-9+/]{43}=):$/;
/** Visible ASCII and space: no control character (NUL, CR, LF, TAB), nothing beyond ASCII. */
const HEADER_CHARS_PATTERN = /^[\x20-\x7e]*$/;

const PARAMETERS = ['Credential', 'Timestamp', 'Nonce', 'Signature'] as const;
type Parameter = (typeof PARAMETERS)[number];

export interface NodeAuthorization {
  readonly credentialId: string;
  readonly timestamp: number;
  /** base64url, as signed. */
  readonly nonce: string;
  readonly nonceBytes: Buffer;
  readonly signature: Buffer;
}

export function formatAuthorization(credentialId: string, timestamp: number, nonce: Buffer, signature: Buffer): string {
  return (
    `${NODE_AUTH_SCHEME} Credential=${credentialId}, Timestamp=${timestamp}, ` +
    `Nonce=${nonce.toString('base64url')}, Signature=${signature.toString('base64url')}`
  );
}

export function formatContentDigest(digest: Buffer): string {
  return `sha-256=:${digest.toString('base64')}:`;
}

function malformed(message: string, credentialId?: string): NodeRequestRefusal {
  return new NodeRequestRefusal('malformed', message, credentialId);
}

/** The bytes of canonical unpadded base64url of exactly `bytes` bytes, or undefined. */
function base64urlBytes(value: string, bytes: number): Buffer | undefined {
  if (value.length !== Math.ceil((bytes * 4) / 3) || !BASE64URL_PATTERN.test(value)) {
    return undefined;
  }
  const decoded = Buffer.from(value, 'base64url');
  // Unused low bits of the last character must be zero: one encoding per value.
  return decoded.length === bytes && decoded.toString('base64url') === value ? decoded : undefined;
}

/** Parses an Authorization header value; a value of another scheme is `missing-credential`. */
export function parseAuthorization(value: string): NodeAuthorization {
  if (value.length > MAX_AUTHORIZATION_CHARS) {
    throw malformed(`the Authorization header is longer than ${MAX_AUTHORIZATION_CHARS} characters`);
  }
  if (!HEADER_CHARS_PATTERN.test(value)) {
    throw malformed('the Authorization header holds a control or non-ASCII character');
  }
  const space = value.indexOf(' ');
  const scheme = space < 0 ? value : value.slice(0, space);
  if (scheme.toLowerCase() !== NODE_AUTH_SCHEME.toLowerCase()) {
    throw new NodeRequestRefusal('missing-credential', `the Authorization header is not a ${NODE_AUTH_SCHEME} node credential`);
  }
  const params = new Map<Parameter, string>();
  for (const item of space < 0 ? [''] : value.slice(space + 1).split(', ')) {
    const equals = item.indexOf('=');
    const name = equals < 0 ? item : item.slice(0, equals);
    if (equals < 0 || !(PARAMETERS as readonly string[]).includes(name)) {
      throw malformed(`the Authorization header has ${equals < 0 ? 'a parameter without a value' : 'an unknown parameter'}; it takes ${PARAMETERS.join(', ')}`);
    }
    if (params.has(name as Parameter)) {
      throw malformed(`the Authorization header has ${name} twice`);
    }
    params.set(name as Parameter, item.slice(equals + 1));
  }
  const missing = PARAMETERS.filter((p) => !params.has(p));
  if (missing.length > 0) {
    throw malformed(`the Authorization header lacks ${missing.join(', ')}`);
  }
  const credentialId = params.get('Credential') ?? '';
  if (!NODE_CREDENTIAL_ID_PATTERN.test(credentialId)) {
    throw malformed('the Authorization header Credential is not 32 lower-case hex digits');
  }
  const timestamp = params.get('Timestamp') ?? '';
  if (!TIMESTAMP_PATTERN.test(timestamp)) {
    throw malformed('the Authorization header Timestamp is not Unix seconds', credentialId);
  }
  const nonce = params.get('Nonce') ?? '';
  const nonceBytes = base64urlBytes(nonce, NODE_REQUEST_NONCE_BYTES);
  if (nonceBytes === undefined) {
    throw malformed(`the Authorization header Nonce is not ${NODE_REQUEST_NONCE_BYTES} bytes of unpadded base64url`, credentialId);
  }
  const signature = base64urlBytes(params.get('Signature') ?? '', SIGNATURE_BYTES);
  if (signature === undefined) {
    throw malformed(`the Authorization header Signature is not ${SIGNATURE_BYTES} bytes of unpadded base64url`, credentialId);
  }
  return { credentialId, timestamp: Number(timestamp), nonce, nonceBytes, signature };
}

/** Parses a Content-Digest header value into the SHA-256 digest it names. */
export function parseContentDigest(value: string, credentialId?: string): Buffer {
  if (value.length > MAX_CONTENT_DIGEST_CHARS) {
    throw malformed(`the Content-Digest header is longer than ${MAX_CONTENT_DIGEST_CHARS} characters`, credentialId);
  }
  const encoded = CONTENT_DIGEST_PATTERN.exec(value)?.[1];
  const digest = encoded === undefined ? undefined : Buffer.from(encoded, 'base64');
  // 43 characters and "=" always decode to 32 bytes; the re-encoding refuses unused bits set.
  if (digest === undefined || digest.length !== SHA256_BYTES || digest.toString('base64') !== encoded) {
    throw malformed('the Content-Digest header is not sha-256=:<base64 SHA-256>: (RFC 9530)', credentialId);
  }
  return digest;
}
