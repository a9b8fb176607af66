/**
 * The dashboard's browser session (issue 16; docs/decisions.md, "Fleet dashboard"): an operator token
 * exchanged once for an HttpOnly, SameSite=Strict cookie. A state-changing request made with the
 * cookie must also carry the session's CSRF token in CSRF_HEADER and a same-host Origin.
 */

/** The cookie holding the session's secret (only its SHA-256 is stored). */
export const SESSION_COOKIE = 'rackseal_session';

/** The request header carrying the session's CSRF token on POST, PUT, PATCH and DELETE. */
export const CSRF_HEADER = 'x-csrf-token';

/** A session lives this long after sign-in, whatever its use; the token's revocation ends it sooner. */
export const SESSION_LIFETIME_SECONDS = 8 * 60 * 60;

/** POST /v1/session. */
export interface CreateSessionRequest {
  /** An operator token (`rks_…`); never stored, only the token row it names is linked. */
  readonly token: string;
}

/** POST and GET /v1/session: who the session acts as, with what scopes, until when. */
export interface OperatorSession<Time = string> {
  readonly tokenId: string;
  readonly tokenName: string;
  /** The token's scopes at this moment (a session never holds more than its token). */
  readonly scopes: readonly string[];
  readonly expiresAt: Time;
  /** To send in CSRF_HEADER with every state change made through this session. */
  readonly csrfToken: string;
}
