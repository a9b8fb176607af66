import { Injectable, Logger } from '@nestjs/common';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { AuditBudget, AuditLog, SuppressedAuditRecords } from '@rackseal/audit';
import { Clock } from '@rackseal/platform';
import type { Request } from 'express';
import { clientAddress } from './rate-limits';

/** The audit action of an operator API call refused by the bearer guard (401 or 403). */
export const OPERATOR_AUTH_REFUSED_ACTION = 'auth.refused';

/**
 * The audit records of operator calls the bearer guard refuses: 401 (no token, or one that is
 * malformed, unknown or revoked) and 403 (a valid token without the route's scope). A guessed token
 * costs its sender nothing, so these are budgeted like the node API's refusals (AuditBudget: per
 * reason and minute, per client address too; the next record counts those left out) and never
 * carry the presented token, only the address, the route and, for a 403, the token's id and the
 * missing scope.
 */
@Injectable()
export class OperatorAuthRefusals {
  private readonly logger = new Logger(OperatorAuthRefusals.name);
  private readonly budget: AuditBudget;

  constructor(
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    suppressed: SuppressedAuditRecords,
  ) {
    this.budget = new AuditBudget({ perWindow: 20, perSource: 5, windowMs: 60_000 }, (reason) => suppressed.add(OPERATOR_AUTH_REFUSED_ACTION, reason));
  }

  async record(request: Request, reason: 'unauthenticated' | 'forbidden', principal?: TokenPrincipal, scope?: string): Promise<void> {
    const address = clientAddress(request);
    const take = this.budget.take(reason, this.clock.now().getTime(), address);
    if (take === undefined) {
      return;
    }
    try {
      await this.audit.append({
        actor: principal === undefined ? `address:${address}` : `token:${principal.tokenId}`,
        action: OPERATOR_AUTH_REFUSED_ACTION,
        subject: '',
        outcome: 'refused',
        details: {
          reason,
          address,
          method: request.method,
          // The route as routed, never the query (a token pasted into the URL stays out of the log).
          path: request.path,
          ...(scope === undefined ? {} : { scope }),
          ...(take.suppressed > 0 ? { suppressed: take.suppressed } : {}),
        },
      });
    } catch (error) {
      // The refusal stands either way: an audit outage must not turn a 401 into a 500.
      this.logger.warn({ error: (error as Error).message, reason }, 'an operator auth refusal could not be audited');
    }
  }
}
