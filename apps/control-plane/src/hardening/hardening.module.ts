import { Global, Module } from '@nestjs/common';
import { OperatorAuthRefusals } from './operator-auth-refusals';
import { RateLimitAudit } from './rate-limit-audit';
import { RateLimiter } from './rate-limiter';
import { CredentialRateLimitInterceptor } from './rate-limits';

/** The control plane's rate limits and the audit of operator auth refusals (the HTTP wiring is configureHardening's); global, as the bearer guard of the operator module needs it. */
@Global()
@Module({
  providers: [RateLimiter, RateLimitAudit, CredentialRateLimitInterceptor, OperatorAuthRefusals],
  exports: [RateLimiter, RateLimitAudit, CredentialRateLimitInterceptor, OperatorAuthRefusals],
})
export class HardeningModule {}
