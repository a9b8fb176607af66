import { timingSafeEqual } from 'node:crypto';
import { ForbiddenException } from '@nestjs/common';
import { CSRF_HEADER, SESSION_COOKIE, SESSION_LIFETIME_SECONDS } from '@rackseal/api-contracts';
import { csrfTokenOf } from '@rackseal/api-tokens';
import type { Request, Response } from 'express';

/** Methods that change nothing (RFC 9110 §9.2.1): the only ones a session may use without CSRF proof. */
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The session secret of the request's Cookie header (RFC 6265 §5.4), if it sends one. */
export function sessionSecretOf(request: Request): string | undefined {
  for (const pair of (request.headers.cookie ?? '').split(';')) {
    const at = pair.indexOf('=');
    if (at > 0 && pair.slice(0, at).trim() === SESSION_COOKIE) {
      return pair.slice(at + 1).trim();
    }
  }
  return undefined;
}

/**
 * The request came over TLS, to this process or (X-Forwarded-Proto) to the load balancer in front
 * of it. Trusting the header costs nothing here: it can only add Secure, which keeps the cookie off
 * plain HTTP.
 */
function overTls(request: Request): boolean {
  return request.secure || String(request.headers['x-forwarded-proto'] ?? '').split(',')[0]?.trim().toLowerCase() === 'https';
}

/** Set-Cookie for a new session (RFC 6265 §4.1; SameSite: RFC 6265bis §4.1.2.7). */
export function setSessionCookie(request: Request, response: Response, secret: string): void {
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Strict', `Max-Age=${SESSION_LIFETIME_SECONDS}`, ...(overTls(request) ? ['Secure'] : [])];
  response.append('Set-Cookie', `${SESSION_COOKIE}=${secret}; ${attributes.join('; ')}`);
}

/** Set-Cookie that makes the browser drop the session cookie (sign-out). */
export function clearSessionCookie(request: Request, response: Response): void {
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Strict', 'Max-Age=0', ...(overTls(request) ? ['Secure'] : [])];
  response.append('Set-Cookie', `${SESSION_COOKIE}=; ${attributes.join('; ')}`);
}

/**
 * A browser's request comes from a page of this very host: its Origin (RFC 6454 §7) names the
 * authority the request was sent to. Compared by host:port only, as TLS may end at a load balancer
 * in front of the control plane; a page of another site always differs in host.
 */
export function sameOriginRequest(request: Request): boolean {
  const origin = request.headers.origin;
  const host = request.headers.host;
  if (typeof origin !== 'string' || typeof host !== 'string') {
    return false;
  }
  try {
    return new URL(origin).host === host.toLowerCase();
  } catch {
    return false;
  }
}

/**
 * A state change made with a session cookie must prove it comes from the dashboard: a same-host
 * Origin and the session's CSRF token in the X-CSRF-Token header (compared in constant time). The
 * SameSite=Strict cookie already stays home on cross-site requests; this is the second lock for
 * browsers or proxies that do not honour it.
 */
export function checkCsrf(request: Request, secret: string): void {
  if (SAFE_METHODS.has(request.method.toUpperCase())) {
    return;
  }
  if (!sameOriginRequest(request)) {
    throw new ForbiddenException('a state change through a session must come from a page of this host (Origin)');
  }
  const sent = Buffer.from(String(request.headers[CSRF_HEADER] ?? ''), 'utf8');
  const expected = Buffer.from(csrfTokenOf(secret), 'utf8');
  if (sent.length !== expected.length || !timingSafeEqual(sent, expected)) {
    throw new ForbiddenException(`a state change through a session needs its CSRF token in the ${CSRF_HEADER} header`);
  }
}
