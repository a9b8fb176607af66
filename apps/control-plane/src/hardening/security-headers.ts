import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { DOCS_PATH } from '../http/docs-paths';

/** A year (RFC 6797 §6.1.1): long enough that a browser never falls back to plain HTTP between visits. */
const HSTS_MAX_AGE_SECONDS = 365 * 24 * 60 * 60;

/**
 * The response headers every answer carries (docs/guide/hardening.md): the API serves JSON to
 * programs, so nothing may sniff it into another type (X-Content-Type-Options), keep it in a cache
 * (Cache-Control no-store: answers carry envelopes, tokens and inventory), frame it
 * (X-Frame-Options, CSP frame-ancestors) or load anything from it (CSP default-src 'none'), and a
 * link out of it sends no Referer. Swagger UI under /docs runs its own scripts and styles: it keeps
 * the other headers but not the API's CSP. HSTS only on a TLS listener (RFC 6797 §7.2: not over
 * plain HTTP).
 */
export function securityHeaders(tls: boolean): RequestHandler {
  const docs = `/${DOCS_PATH}`;
  return (request: Request, response: Response, next: NextFunction) => {
    response.setHeader('X-Content-Type-Options', 'nosniff');
    response.setHeader('Cache-Control', 'no-store');
    response.setHeader('Referrer-Policy', 'no-referrer');
    response.setHeader('X-Frame-Options', 'DENY');
    if (request.path !== docs && !request.path.startsWith(`${docs}/`)) {
      response.setHeader('Content-Security-Policy', "default-src 'none'; frame-ancestors 'none'");
    }
    if (tls) {
      response.setHeader('Strict-Transport-Security', `max-age=${HSTS_MAX_AGE_SECONDS}`);
    }
    next();
  };
}
