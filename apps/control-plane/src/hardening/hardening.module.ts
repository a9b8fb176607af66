import { Module } from '@nestjs/common';
import { RateLimitAudit } from './rate-limit-audit';
import { RateLimiter } from './rate-limiter';
import { CredentialRateLimitInterceptor } from './rate-limits';

/** The control plane's rate limits (the HTTP wiring is configureHardening's). */
@Module({
  providers: [RateLimiter, RateLimitAudit, CredentialRateLimitInterceptor],
  exports: [RateLimiter, RateLimitAudit, CredentialRateLimitInterceptor],
})
export class HardeningModule {}
