import { type CanActivate, type ExecutionContext, ForbiddenException, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiTokens, grants, OperatorSessions, type Scope, type TokenPrincipal } from '@rackseal/api-tokens';
import type { Request, Response } from 'express';
import { OperatorAuthRefusals } from '../hardening/operator-auth-refusals';
import { NODE_API_ROUTE, PUBLIC_ROUTE, REQUIRED_SCOPE } from './auth.decorators';
import { checkCsrf, sessionSecretOf } from './session-cookie';

/**
 * `Bearer <token>` (RFC 6750 §2.1). The scheme is case-insensitive (RFC 9110 §11.1) and separated
 * from the credentials by one or more spaces (§11.4); whitespace around the field value is not
 * part of it (§5.5), so it is trimmed.
 */
const BEARER_CREDENTIALS = /^bearer +(\S+)$/i;

/** The token of an Authorization header value, or undefined when it is not a Bearer credential. */
export function bearerToken(header: string | undefined): string | undefined {
  return BEARER_CREDENTIALS.exec((header ?? '').replace(/^[ \t]+|[ \t]+$/g, ''))?.[1];
}

/** The session a request was authenticated by (the dashboard's cookie). */
export interface RequestSession {
  readonly id: string;
  readonly secret: string;
  readonly expiresAt: Date;
}

/**
 * Every route needs `Authorization: Bearer <token>` unless marked @Public() or @NodeApi() (node
 * routes have their own guard family and never take an operator token). Without an Authorization
 * header, the dashboard's session cookie stands for the token it was made from, with that token's
 * scopes and audit actor; a state change through it also needs the CSRF proof (session-cookie.ts).
 * 401 when the token or session is missing, malformed, unknown, expired or revoked (one message for
 * all, so probing learns nothing); 403 naming the scope when it is valid but not allowed.
 */
@Injectable()
export class BearerAuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: ApiTokens,
    private readonly refusals: OperatorAuthRefusals,
    private readonly sessions: OperatorSessions,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(PUBLIC_ROUTE, targets) === true || this.reflector.getAllAndOverride<boolean>(NODE_API_ROUTE, targets) === true) {
      return true;
    }
    const http = context.switchToHttp();
    const request = http.getRequest<Request & { principal?: TokenPrincipal; operatorSession?: RequestSession }>();
    const principal = await this.authenticate(request);
    if (principal === undefined) {
      await this.refusals.record(request, 'unauthenticated');
      http.getResponse<Response>().setHeader('WWW-Authenticate', 'Bearer realm="rackseal"');
      throw new UnauthorizedException('a valid operator token is required (Authorization: Bearer rks_…)');
    }
    if (request.operatorSession !== undefined) {
      checkCsrf(request, request.operatorSession.secret);
    }
    const scope = this.reflector.getAllAndOverride<Scope | undefined>(REQUIRED_SCOPE, targets);
    if (scope === undefined) {
      // A route without a declared scope is a programming error; refuse rather than allow.
      throw new ForbiddenException('this operation declares no scope; only tokens with a scope may call it');
    }
    if (!grants(principal.scopes, scope)) {
      await this.refusals.record(request, 'forbidden', principal, scope);
      throw new ForbiddenException(`this token lacks the "${scope}" scope`);
    }
    request.principal = principal;
    return true;
  }

  /** A bearer token when the request has an Authorization header (never falling back to the cookie), else the session cookie. */
  private async authenticate(request: Request & { operatorSession?: RequestSession }): Promise<TokenPrincipal | undefined> {
    if (request.headers.authorization !== undefined) {
      const token = bearerToken(request.headers.authorization);
      return token === undefined ? undefined : this.tokens.authenticate(token);
    }
    const secret = sessionSecretOf(request);
    const session = secret === undefined ? undefined : await this.sessions.authenticate(secret);
    if (session === undefined || secret === undefined) {
      return undefined;
    }
    request.operatorSession = { id: session.sessionId, secret, expiresAt: session.expiresAt };
    return { tokenId: session.tokenId, name: session.name, scopes: session.scopes };
  }
}
