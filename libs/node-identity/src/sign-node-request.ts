import { formatAuthorization, formatContentDigest, NODE_REQUEST_NONCE_BYTES } from './authorization-header';
import { NODE_CREDENTIAL_ID_PATTERN } from './identifiers';
import type { NodeCredential } from './node-credential';
import { NodeIdentityInputError } from './node-identity-errors';
import { bodyDigest, MAX_NODE_REQUEST_PATH_CHARS, requestSignature, validMethod, validPath } from './request-signature';

export interface NodeRequestToSign {
  readonly credential: NodeCredential;
  /** Upper-case, as sent: `GET`, `POST`. */
  readonly method: string;
  /** The request target as sent, base path and query included: `/node/v1/attestations?wait=1`. */
  readonly path: string;
  /** The body bytes as sent; empty for none. */
  readonly body: Buffer;
  readonly now: Date;
  /** 16 fresh random bytes (the agent: `randomBytes(16)`); never reuse one. */
  readonly nonce: Buffer;
}

/** The headers that authenticate a node API request: `authorization` and `content-digest`. */
export function signNodeRequest(request: NodeRequestToSign): Record<string, string> {
  const { credential, method, path, body, now, nonce } = request;
  if (!NODE_CREDENTIAL_ID_PATTERN.test(credential.credentialId)) {
    throw new NodeIdentityInputError('a node credential ID is 32 lower-case hex digits');
  }
  if (!validMethod(method)) {
    throw new NodeIdentityInputError('a node request method is 1 to 16 upper-case letters');
  }
  if (!validPath(path)) {
    throw new NodeIdentityInputError(`a node request path starts with "/" and is at most ${MAX_NODE_REQUEST_PATH_CHARS} visible ASCII characters`);
  }
  if (!Buffer.isBuffer(body)) {
    throw new NodeIdentityInputError('a node request body is a Buffer');
  }
  if (!Buffer.isBuffer(nonce) || nonce.length !== NODE_REQUEST_NONCE_BYTES) {
    throw new NodeIdentityInputError(`a node request nonce is ${NODE_REQUEST_NONCE_BYTES} bytes`);
  }
  const millis = now instanceof Date ? now.getTime() : Number.NaN;
  if (!Number.isFinite(millis) || millis < 0) {
    throw new NodeIdentityInputError('a node request time is a valid Date after 1970');
  }
  const timestamp = Math.floor(millis / 1000);
  const digest = bodyDigest(body);
  const signature = requestSignature(credential.key, {
    method,
    path,
    credentialId: credential.credentialId,
    timestamp,
    nonce: nonce.toString('base64url'),
    bodyDigest: digest,
  });
  return {
    authorization: formatAuthorization(credential.credentialId, timestamp, nonce, signature),
    'content-digest': formatContentDigest(digest),
  };
}
