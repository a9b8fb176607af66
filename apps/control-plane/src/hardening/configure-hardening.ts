import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { RateLimitAudit } from './rate-limit-audit';
import { RateLimiter } from './rate-limiter';
import { addressRateLimit, CredentialRateLimitInterceptor } from './rate-limits';
import { securityHeaders } from './security-headers';

/**
 * The hardening middleware, mounted by configureHttpApp right after the request id and before any
 * body is read: security headers on every answer (refusals included), then the per-address rate
 * limit. Returns the per-credential interceptor, which configureHttpApp puts before the interceptors
 * that read a body.
 */
export function configureHardening(app: INestApplication): CredentialRateLimitInterceptor {
  const express = app as NestExpressApplication;
  const config = app.get<RacksealConfig>(RACKSEAL_CONFIG);
  express.use(securityHeaders(config.http.tls !== null));
  express.use(addressRateLimit(app.get(RateLimiter), app.get(RateLimitAudit)));
  return app.get(CredentialRateLimitInterceptor);
}
