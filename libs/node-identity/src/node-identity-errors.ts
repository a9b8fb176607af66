/**
 * Why a node request was refused, as a stable reason the control plane records, audits and answers
 * (the agent prints it). Messages name the problem and at most the credential ID (a public value):
 * never key bytes, a signature or a header value as received.
 */
export const NODE_REQUEST_REFUSAL_REASONS = [
  /** No `RackSeal-HMAC-SHA256` Authorization header (none at all, or another scheme such as an operator's Bearer token). */
  'missing-credential',
  /** The Authorization or Content-Digest header does not parse: missing, duplicate or unknown parameters, bad encoding, too long. */
  'malformed',
  /** The credential ID names no live credential: never issued, rotated away by a re-attestation, or revoked. */
  'unknown-credential',
  /** The signature does not verify under the credential's key: another machine's key, or a changed method, path or body. */
  'bad-signature',
  /** The timestamp is outside the accepted window around the server's clock. */
  'stale',
  /** The nonce was already used with this credential inside the window. */
  'replayed',
  /** The Content-Digest header does not match the body received. */
  'body-digest-mismatch',
] as const;

export type NodeRequestRefusalReason = (typeof NODE_REQUEST_REFUSAL_REASONS)[number];

/** A node request refused; `reason` is stable, `credentialId` is set once the header named one. */
export class NodeRequestRefusal extends Error {
  constructor(
    readonly reason: NodeRequestRefusalReason,
    message: string,
    readonly credentialId?: string,
  ) {
    super(message);
    this.name = 'NodeRequestRefusal';
  }
}

/**
 * A caller of this library passed input it never accepts (a secret too short, a nonce of the wrong
 * size, a path with a space): a bug on this side, not something a remote peer sent.
 */
export class NodeIdentityInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NodeIdentityInputError';
  }
}
