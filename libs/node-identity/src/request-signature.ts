import { createHash, createHmac } from 'node:crypto';
import type { SecretBytes } from '@rackseal/config/secret-bytes';

/**
 * What a node request's signature covers (docs/decisions.md, "Node identity"): HMAC-SHA256 under
 * the node credential's key of the lines
 *
 *   rackseal node request v1
 *   <method>            e.g. POST
 *   <path>              the request target as sent, query included, e.g. /node/v1/attestations?x=1
 *   <credential ID>
 *   <timestamp>         Unix seconds, decimal
 *   <nonce>             base64url
 *   <body digest>       lower-case hex SHA-256 of the body as received (empty body: of no bytes)
 *
 * joined by "\n". No field can hold a line feed (each has a grammar without one, checked on both
 * sides), so the lines are unambiguous. The body digest is computed from the bytes, never taken from
 * the Content-Digest header.
 */

export const NODE_REQUEST_SIGNATURE_LABEL = 'rackseal node request v1';

/** HTTP methods are case-sensitive tokens (RFC 9110 §9.1); the standard ones are upper-case letters. */
const METHOD_PATTERN = /^[A-Z]{1,16}$/;

/** An origin-form request target (RFC 9112 §3.2.1): starts with "/", visible ASCII only, bounded. */
export const MAX_NODE_REQUEST_PATH_CHARS = 2048;
const PATH_PATTERN = /^\/[\x21-\x7e]*$/;

export function validMethod(method: unknown): method is string {
  return typeof method === 'string' && METHOD_PATTERN.test(method);
}

export function validPath(path: unknown): path is string {
  return typeof path === 'string' && path.length <= MAX_NODE_REQUEST_PATH_CHARS && PATH_PATTERN.test(path);
}

export function bodyDigest(body: Buffer): Buffer {
  return createHash('sha256').update(body).digest();
}

export interface SignedFields {
  readonly method: string;
  readonly path: string;
  readonly credentialId: string;
  readonly timestamp: number;
  /** base64url, as in the header. */
  readonly nonce: string;
  readonly bodyDigest: Buffer;
}

/** HMAC-SHA256 under `key` of the lines above. */
export function requestSignature(key: SecretBytes, fields: SignedFields): Buffer {
  const text = [
    NODE_REQUEST_SIGNATURE_LABEL,
    fields.method,
    fields.path,
    fields.credentialId,
    String(fields.timestamp),
    fields.nonce,
    fields.bodyDigest.toString('hex'),
  ].join('\n');
  const keyBytes = key.reveal();
  try {
    return createHmac('sha256', keyBytes).update(text, 'utf8').digest();
  } finally {
    keyBytes.fill(0);
  }
}
