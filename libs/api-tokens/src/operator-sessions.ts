import { createHmac } from 'node:crypto';
import { SESSION_LIFETIME_SECONDS } from '@rackseal/api-contracts';
import type { AuditLog } from '@rackseal/audit';
import type { Clock, RandomSource } from '@rackseal/platform';
import type { DataSource } from 'typeorm';
import type { ApiTokens, TokenPrincipal } from './api-tokens';
import { hashToken } from './token-format';

/** A session secret: 32 random bytes in base64url (the cookie's value). */
const SESSION_SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;

/**
 * Live sessions one token may hold: signing in once more ends its oldest beyond this many. A browser
 * per operator and a few tabs' worth of re-sign-ins fit; a script signing in in a loop (with the
 * token, so no guessing) cannot grow the table without bound.
 */
export const MAX_SESSIONS_PER_TOKEN = 16;

/** What a valid session stands for: its token's principal, read afresh on every request. */
export interface SessionPrincipal extends TokenPrincipal {
  readonly sessionId: string;
  readonly expiresAt: Date;
}

/** A new session: the secret goes into the cookie once and is never stored. */
export interface NewSession {
  readonly secret: string;
  readonly principal: SessionPrincipal;
}

/**
 * The dashboard's browser sessions (issue 16; table `operator_sessions`, migration 1765800000000).
 * A session is made from an operator token and acts as that token: each request reads the token's
 * current scopes and refuses the session once the token is revoked, so a session never outlives or
 * outranks its token. Only SHA-256 of the secret is stored (the secret has 256 bits of entropy, as
 * a token does: token-format.ts). Creating and ending one are audited under the token's actor.
 */
export class OperatorSessions {
  constructor(
    private readonly dataSource: DataSource,
    private readonly tokens: Pick<ApiTokens, 'authenticate'>,
    private readonly audit: Pick<AuditLog, 'append'>,
    private readonly clock: Clock,
    private readonly random: RandomSource,
  ) {}

  /** A session for `token`, or undefined when the token is unknown, malformed or revoked. */
  async create(token: string): Promise<NewSession | undefined> {
    const principal = await this.tokens.authenticate(token);
    if (principal === undefined) {
      return undefined;
    }
    const secret = this.random.bytes(32).toString('base64url');
    const id = this.random.uuid();
    const now = this.clock.now();
    const expiresAt = new Date(now.getTime() + SESSION_LIFETIME_SECONDS * 1000);
    await this.dataSource.transaction(async (m) => {
      // Expired sessions are useless (authenticate ignores them): drop them here, where sessions are made.
      await m.query('DELETE FROM operator_sessions WHERE expires_at <= $1', [now]);
      // The token's row, locked: two sign-ins at once count its sessions one after the other.
      await m.query('SELECT id FROM api_tokens WHERE id = $1 FOR UPDATE', [principal.tokenId]);
      await m.query('INSERT INTO operator_sessions (id, session_hash, token_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [id, hashToken(secret), principal.tokenId, now, expiresAt]);
      const [evicted] = (await m.query(
        `DELETE FROM operator_sessions WHERE id IN (
           SELECT id FROM operator_sessions WHERE token_id = $1 AND id <> $2 ORDER BY created_at DESC, id DESC OFFSET $3)
         RETURNING id`,
        // The new session is never the one ended: the others keep MAX - 1 places, newest first.
        [principal.tokenId, id, MAX_SESSIONS_PER_TOKEN - 1],
      )) as [{ id: string }[], number];
      await this.audit.append(
        { actor: `token:${principal.tokenId}`, action: 'session.created', subject: `session:${id}`, outcome: 'success', details: { expiresAt: expiresAt.toISOString() } },
        m,
      );
      for (const old of evicted) {
        await this.audit.append(
          { actor: `token:${principal.tokenId}`, action: 'session.ended', subject: `session:${old.id}`, outcome: 'success', details: { reason: 'session-limit', limit: MAX_SESSIONS_PER_TOKEN } },
          m,
        );
      }
    });
    return { secret, principal: { ...principal, sessionId: id, expiresAt } };
  }

  /** The session of a cookie's secret, or undefined when it is malformed, unknown, expired, or its token revoked. */
  async authenticate(secret: string): Promise<SessionPrincipal | undefined> {
    if (!SESSION_SECRET_SHAPE.test(secret)) {
      return undefined;
    }
    const rows = (await this.dataSource.query(
      `SELECT s.id, s.expires_at, t.id AS token_id, t.name, t.scopes
         FROM operator_sessions s JOIN api_tokens t ON t.id = s.token_id
        WHERE s.session_hash = $1 AND s.expires_at > $2 AND t.revoked_at IS NULL`,
      [hashToken(secret), this.clock.now()],
    )) as { id: string; expires_at: Date; token_id: string; name: string; scopes: string[] }[];
    const row = rows[0];
    return row === undefined ? undefined : { sessionId: row.id, expiresAt: row.expires_at, tokenId: row.token_id, name: row.name, scopes: row.scopes };
  }

  /** Ends a session (sign-out): its row is deleted, so its cookie authenticates nothing any more. */
  async end(sessionId: string, actor: string): Promise<boolean> {
    return this.dataSource.transaction(async (m) => {
      const [, affected] = (await m.query('DELETE FROM operator_sessions WHERE id = $1', [sessionId])) as [unknown, number];
      if (affected > 0) {
        await this.audit.append({ actor, action: 'session.ended', subject: `session:${sessionId}`, outcome: 'success', details: {} }, m);
      }
      return affected > 0;
    });
  }
}

/**
 * The session's CSRF token, derived from its secret (HMAC-SHA256 keyed with it), so nothing more is
 * stored and the server can check it against the cookie of the same request. Script on another
 * origin cannot read it: it is only in the body of same-origin answers (no CORS headers are sent).
 */
export function csrfTokenOf(secret: string): string {
  return createHmac('sha256', secret).update('rackseal dashboard csrf v1').digest('base64url');
}
