import { type CallHandler, type ExecutionContext, HttpException, HttpStatus, Injectable, type NestInterceptor } from '@nestjs/common';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { NODE_API_BASE_PATH } from '@rackseal/node-api-contracts';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { from, type Observable, switchMap } from 'rxjs';
import type { NodeCaller } from '../auth/node-request.guard';
import { RateLimitAudit } from './rate-limit-audit';
import { RateLimiter, type RateLimitScope } from './rate-limiter';

/**
 * The APIs the limits apply to: the operator API and the node API (not health probes, /metrics or
 * /docs). Compared without case: Express routes case-insensitively, so `/NODE/v1/attestations`
 * reaches the enrollment handler and must spend the same budget.
 */
export function isLimitedPath(path: string): boolean {
  const lower = path.toLowerCase();
  return lower.startsWith('/v1/') || lower.startsWith(`${NODE_API_BASE_PATH.toLowerCase()}/`);
}

/** The client's address as the socket has it, an IPv4-mapped IPv6 address written as IPv4. */
export function clientAddress(request: Request): string {
  const address = request.socket.remoteAddress ?? 'unknown';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice('::ffff:'.length) : address;
}

/** 429 request.rate-limited (the filter's generic code of 429) with Retry-After (RFC 6585 §4). */
function tooManyRequests(response: Response, scope: RateLimitScope, retryAfterSeconds: number): HttpException {
  response.setHeader('Retry-After', String(retryAfterSeconds));
  const whose = scope === 'address' ? 'this client address' : 'this credential';
  return new HttpException(`too many requests from ${whose}; retry after ${retryAfterSeconds} s`, HttpStatus.TOO_MANY_REQUESTS);
}

/**
 * Express middleware: the per-address limit, before the body is read, so a flood costs the server
 * a Redis round trip per request and never a parse. Every request to the APIs counts, refused and
 * unauthenticated ones included (that is what bounds guessing and enrollment floods).
 */
export function addressRateLimit(limiter: RateLimiter, audit: RateLimitAudit): RequestHandler {
  return (request: Request, response: Response, next: NextFunction) => {
    if (limiter.rateOf('address') === 0 || !isLimitedPath(request.path)) {
      next();
      return;
    }
    const address = clientAddress(request);
    limiter.take('address', address).then(
      (verdict) => {
        if (verdict.allowed) {
          next();
          return;
        }
        audit.refused({ scope: 'address', source: `address:${address}`, method: request.method, path: request.path, retryAfterSeconds: verdict.retryAfterSeconds });
        next(tooManyRequests(response, 'address', verdict.retryAfterSeconds));
      },
      (error: unknown) => next(error),
    );
  };
}

/**
 * The per-credential limit, once the guards have authenticated the request (an operator token's
 * principal, a signed node request's caller) and before its body is read or validated. Keyed on
 * the credential the server verified, not on what a request claims: a client sending someone
 * else's token ID with a bad signature spends its address's budget, never that credential's.
 */
@Injectable()
export class CredentialRateLimitInterceptor implements NestInterceptor {
  constructor(
    private readonly limiter: RateLimiter,
    private readonly audit: RateLimitAudit,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<Request & { principal?: TokenPrincipal; node?: NodeCaller }>();
    const source =
      request.principal !== undefined ? `token:${request.principal.tokenId}` : request.node !== undefined ? `node-credential:${request.node.credentialId}` : undefined;
    if (source === undefined || this.limiter.rateOf('credential') === 0) {
      return next.handle();
    }
    return from(this.limiter.take('credential', source)).pipe(
      switchMap((verdict) => {
        if (!verdict.allowed) {
          this.audit.refused({ scope: 'credential', source, method: request.method, path: request.path, retryAfterSeconds: verdict.retryAfterSeconds });
          throw tooManyRequests(http.getResponse<Response>(), 'credential', verdict.retryAfterSeconds);
        }
        return next.handle();
      }),
    );
  }
}
