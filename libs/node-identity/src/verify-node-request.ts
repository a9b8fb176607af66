import { timingSafeEqual } from 'node:crypto';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import { parseAuthorization, parseContentDigest } from './authorization-header';
import { NodeIdentityInputError, NodeRequestRefusal } from './node-identity-errors';
import type { ReplayGuard } from './replay-guard';
import { bodyDigest, requestSignature, validMethod, validPath } from './request-signature';
import { type NodeRequestHeaders, singleHeader } from './request-headers';

/**
 * The window, in seconds either side of the server's clock, a request's timestamp must fall in
 * (docs/decisions.md, "Node identity"): wide enough for a machine whose clock is not yet
 * NTP-synchronised at boot, short enough that the replay table stays small.
 */
export const DEFAULT_MAX_SKEW_SECONDS = 300;
const MAX_MAX_SKEW_SECONDS = 3600;

export interface NodeRequestVerification {
  readonly now: Date;
  /** Default DEFAULT_MAX_SKEW_SECONDS; 1 to 3600. */
  readonly maxSkewSeconds?: number;
  /** The live credential's key by its ID; undefined when there is none (never issued, rotated, revoked). */
  readonly lookup: (credentialId: string) => Promise<SecretBytes | undefined>;
  readonly replay: ReplayGuard;
}

export type NodeRequestVerdict = { readonly ok: true; readonly credentialId: string } | { readonly ok: false; readonly refusal: NodeRequestRefusal };

/**
 * Checks a node API request signed by signNodeRequest: `method` and `path` as received (Express:
 * `req.method`, `req.originalUrl`), `body` the raw bytes. The checks run cheapest first, and the
 * nonce is recorded only for a request whose signature verified, so unauthenticated traffic cannot
 * fill the replay table: missing header → malformed → stale → body digest → unknown credential →
 * signature (constant-time) → replay. A refusal is answered, never thrown; an error of `lookup` or
 * `replay` (the database is down) is thrown as it is, since it says nothing about the request.
 */
export async function verifyNodeRequest(
  headers: NodeRequestHeaders,
  method: string,
  path: string,
  body: Buffer,
  options: NodeRequestVerification,
): Promise<NodeRequestVerdict> {
  const skew = options.maxSkewSeconds ?? DEFAULT_MAX_SKEW_SECONDS;
  if (!Number.isInteger(skew) || skew < 1 || skew > MAX_MAX_SKEW_SECONDS) {
    throw new NodeIdentityInputError(`maxSkewSeconds is an integer from 1 to ${MAX_MAX_SKEW_SECONDS}`);
  }
  const now = Math.floor(options.now.getTime() / 1000);
  if (!Number.isFinite(now)) {
    throw new NodeIdentityInputError('the verification time is a valid Date');
  }
  let credentialId: string | undefined;
  try {
    const authorization = singleHeader(headers, 'authorization');
    if (authorization === undefined) {
      throw new NodeRequestRefusal('missing-credential', 'the request carries no node credential (Authorization header)');
    }
    const auth = parseAuthorization(authorization);
    credentialId = auth.credentialId;
    const contentDigest = singleHeader(headers, 'content-digest');
    if (contentDigest === undefined) {
      throw new NodeRequestRefusal('malformed', 'the request has no Content-Digest header', credentialId);
    }
    const claimedDigest = parseContentDigest(contentDigest, credentialId);
    if (!validMethod(method) || !validPath(path) || !Buffer.isBuffer(body)) {
      throw new NodeRequestRefusal('malformed', 'the request method or path is not one a node request is signed over', credentialId);
    }
    if (Math.abs(now - auth.timestamp) > skew) {
      // Said from the node's side, with no sign to decode: the request's timestamp is the node's clock.
      const direction = auth.timestamp > now ? 'ahead of' : 'behind';
      throw new NodeRequestRefusal(
        'stale',
        `the node's clock is ${Math.abs(now - auth.timestamp)} s ${direction} the server's; at most ${skew} s of difference is accepted (correct the node's clock)`,
        credentialId,
      );
    }
    const digest = bodyDigest(body);
    if (!timingSafeEqual(digest, claimedDigest)) {
      throw new NodeRequestRefusal('body-digest-mismatch', 'the Content-Digest header does not match the body received', credentialId);
    }
    const key = await options.lookup(credentialId);
    if (key === undefined) {
      throw new NodeRequestRefusal('unknown-credential', `node credential ${credentialId} is unknown, rotated or revoked`, credentialId);
    }
    const expected = requestSignature(key, { method, path, credentialId, timestamp: auth.timestamp, nonce: auth.nonce, bodyDigest: digest });
    if (!timingSafeEqual(expected, auth.signature)) {
      throw new NodeRequestRefusal('bad-signature', `the request's signature does not verify under node credential ${credentialId}`, credentialId);
    }
    const first = await options.replay.remember(credentialId, auth.nonceBytes, new Date((auth.timestamp + skew) * 1000));
    if (!first) {
      throw new NodeRequestRefusal('replayed', `the request's nonce was already used with node credential ${credentialId}`, credentialId);
    }
    return { ok: true, credentialId };
  } catch (error) {
    if (error instanceof NodeRequestRefusal) {
      return { ok: false, refusal: error };
    }
    throw error;
  }
}
