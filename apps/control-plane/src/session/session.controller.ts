import { Body, Controller, Delete, ForbiddenException, Get, HttpCode, Post, Req, Res, UnauthorizedException } from '@nestjs/common';
import { ApiBadRequestResponse, ApiForbiddenResponse, ApiNoContentResponse, ApiOkResponse, ApiTags, ApiUnauthorizedResponse } from '@nestjs/swagger';
import { SESSION_COOKIE } from '@rackseal/api-contracts';
import { csrfTokenOf, OperatorSessions, type SessionPrincipal } from '@rackseal/api-tokens';
import type { Request, Response } from 'express';
import { Public } from '../auth/auth.decorators';
import { OperatorAuthRefusals } from '../hardening/operator-auth-refusals';
import { checkCsrf, clearSessionCookie, sameOriginRequest, sessionSecretOf, setSessionCookie } from '../auth/session-cookie';
import { CreateSessionDto, OperatorSessionDto } from './session.dto';

/**
 * The dashboard's sign-in and sign-out (issue 16): an operator token exchanged for a session cookie
 * (HttpOnly, SameSite=Strict, Secure over TLS) that the operator API then accepts in place of the
 * bearer token, with the token's scopes and audit actor (BearerAuthGuard). The token itself never
 * reaches the browser's storage; the session is a row of libs/api-tokens' operator_sessions.
 * All three routes are @Public for the bearer guard: they read the cookie themselves, as they are
 * about the session, whatever its scopes (reading who you are and signing out need none).
 */
@ApiTags('session')
@Controller('v1/session')
export class SessionController {
  constructor(
    private readonly sessions: OperatorSessions,
    private readonly refusals: OperatorAuthRefusals,
  ) {}

  /** Sign-in. Only from a page of this host (Origin), so another site cannot sign a browser in as someone else. */
  @Post()
  @Public()
  @HttpCode(200)
  @ApiOkResponse({ type: OperatorSessionDto, description: `sets the ${SESSION_COOKIE} cookie` })
  @ApiUnauthorizedResponse({ description: 'auth.unauthenticated: unknown, malformed or revoked token (audited auth.refused, budgeted as the bearer guard\'s refusals)' })
  @ApiForbiddenResponse({ description: 'auth.forbidden: no Origin of this host' })
  async create(@Body() body: CreateSessionDto, @Req() request: Request, @Res({ passthrough: true }) response: Response): Promise<OperatorSessionDto> {
    if (!sameOriginRequest(request)) {
      throw new ForbiddenException('sign-in must come from a page of this host (Origin)');
    }
    const made = await this.sessions.create(body.token);
    if (made === undefined) {
      // A token guessed here is a token guessed at the bearer guard: the same budgeted auth.refused record.
      await this.refusals.record(request, 'unauthenticated');
      throw new UnauthorizedException('a valid operator token is required');
    }
    setSessionCookie(request, response, made.secret);
    const { principal } = made;
    return { tokenId: principal.tokenId, tokenName: principal.name, scopes: [...principal.scopes], expiresAt: principal.expiresAt, csrfToken: csrfTokenOf(made.secret) };
  }

  /** The signed-in session, with its CSRF token (a reloaded page reads it here). */
  @Get()
  @Public()
  @ApiOkResponse({ type: OperatorSessionDto, description: `the session of the ${SESSION_COOKIE} cookie` })
  @ApiUnauthorizedResponse({ description: 'auth.unauthenticated: no session cookie, or one that is unknown, expired or whose token was revoked' })
  async current(@Req() request: Request): Promise<OperatorSessionDto> {
    const { secret, session } = await this.sessionOf(request);
    return { tokenId: session.tokenId, tokenName: session.name, scopes: [...session.scopes], expiresAt: session.expiresAt, csrfToken: csrfTokenOf(secret) };
  }

  /** Sign-out: the session row is deleted (audited) and the cookie cleared. Needs the CSRF proof like any state change. */
  @Delete()
  @Public()
  @HttpCode(204)
  @ApiNoContentResponse({ description: `signed out: the session row is deleted and the ${SESSION_COOKIE} cookie cleared` })
  @ApiBadRequestResponse({ description: 'request.invalid: a malformed request (e.g. a NUL byte in the query)' })
  @ApiUnauthorizedResponse({ description: 'auth.unauthenticated: no live session cookie' })
  @ApiForbiddenResponse({ description: 'auth.forbidden: no CSRF token of this session, or no Origin of this host' })
  async end(@Req() request: Request, @Res({ passthrough: true }) response: Response): Promise<void> {
    const { secret, session } = await this.sessionOf(request);
    checkCsrf(request, secret);
    await this.sessions.end(session.sessionId, `token:${session.tokenId}`);
    clearSessionCookie(request, response);
  }

  /** The live session of the request's cookie; 401 like the guard's when there is none. */
  private async sessionOf(request: Request): Promise<{ secret: string; session: SessionPrincipal }> {
    const secret = sessionSecretOf(request);
    const session = secret === undefined ? undefined : await this.sessions.authenticate(secret);
    if (secret === undefined || session === undefined) {
      throw new UnauthorizedException('no live session: sign in again');
    }
    return { secret, session };
  }
}
