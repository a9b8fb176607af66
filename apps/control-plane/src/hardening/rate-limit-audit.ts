import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { AuditLog, type JsonValue, SuppressedAuditRecords } from '@rackseal/audit';
import type { RateLimitScope } from './rate-limiter';

/** The audit action of a refusal by a rate limit (and of the summaries of a flood). */
export const RATE_LIMITED_ACTION = 'request.rate-limited';

/** Sources (addresses, credentials) recorded one by one per window; beyond it a flood is summarised only. */
const RECORDS_PER_WINDOW = 20;
/** Sources counted per window; the rest share one count (an IPv6 flood must not grow the map). */
const MAX_SOURCES = 4096;
/** Sources named in a window's summary, the most refused first. */
const SUMMARY_SOURCES = 10;
const WINDOW_MS = 60_000;

interface Counted {
  readonly scope: RateLimitScope;
  readonly source: string;
  /** Refusals since this source's record or the last summary. */
  unrecorded: number;
}

/** What a refusal is recorded with: who, and where (the route as routed, never a query string). */
export interface RateLimitRefusal {
  readonly scope: RateLimitScope;
  /** `address:<ip>`, `token:<id>` or `node-credential:<id>`: the actor of the record. */
  readonly source: string;
  readonly method: string;
  readonly path: string;
  readonly retryAfterSeconds: number;
}

/**
 * The audit trail of rate-limit refusals, bounded however hard a client floods: the first refusal of
 * each source in a minute is recorded as it happens (at most RECORDS_PER_WINDOW of them, all
 * sources together), and every refusal after it is only counted; once a minute one summary record
 * per scope carries those counts (total, and the most refused sources). So a flood of a million
 * requests costs the append-only log a few rows a minute per replica, and no refusal goes uncounted.
 * Per process: N replicas write at most N times the bound. Writes are not awaited by the request.
 */
@Injectable()
export class RateLimitAudit implements OnApplicationShutdown {
  private readonly logger = new Logger(RateLimitAudit.name);
  private readonly counted = new Map<string, Counted>();
  private overflow: Record<RateLimitScope, number> = { address: 0, credential: 0 };
  private recordsThisWindow = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly audit: AuditLog,
    private readonly suppressed: SuppressedAuditRecords,
  ) {}

  refused(refusal: RateLimitRefusal): void {
    this.timer ??= setInterval(() => void this.flush(), WINDOW_MS).unref();
    const key = `${refusal.scope}\u0000${refusal.source}`;
    const known = this.counted.get(key);
    if (known === undefined && this.counted.size < MAX_SOURCES && this.recordsThisWindow < RECORDS_PER_WINDOW) {
      this.counted.set(key, { scope: refusal.scope, source: refusal.source, unrecorded: 0 });
      this.recordsThisWindow += 1;
      this.logger.warn({ scope: refusal.scope, source: refusal.source, method: refusal.method, path: refusal.path }, 'request refused by a rate limit');
      this.write({
        actor: refusal.source,
        details: { scope: refusal.scope, method: refusal.method, path: refusal.path, retryAfterSeconds: refusal.retryAfterSeconds },
      });
      return;
    }
    this.suppressed.add(RATE_LIMITED_ACTION, refusal.scope);
    if (known !== undefined) {
      known.unrecorded += 1;
    } else if (this.counted.size < MAX_SOURCES) {
      this.counted.set(key, { scope: refusal.scope, source: refusal.source, unrecorded: 1 });
    } else {
      this.overflow[refusal.scope] += 1;
    }
  }

  /** One summary record per scope with refusals not yet in a record, then a new window. */
  async flush(): Promise<void> {
    const entries = [...this.counted.values()];
    const overflow = this.overflow;
    this.counted.clear();
    this.overflow = { address: 0, credential: 0 };
    this.recordsThisWindow = 0;
    for (const scope of ['address', 'credential'] as const) {
      const mine = entries.filter((e) => e.scope === scope && e.unrecorded > 0).sort((a, b) => b.unrecorded - a.unrecorded);
      const total = mine.reduce((sum, e) => sum + e.unrecorded, 0) + overflow[scope];
      if (total === 0) {
        continue;
      }
      this.logger.warn({ scope, refused: total, sources: mine.length }, 'requests refused by a rate limit in the last minute');
      this.write({
        actor: 'system:rate-limit',
        details: {
          scope,
          summary: true,
          refused: total,
          sources: mine.slice(0, SUMMARY_SOURCES).map((e) => ({ source: e.source, refused: e.unrecorded })),
          otherSources: Math.max(0, mine.length - SUMMARY_SOURCES) + (overflow[scope] > 0 ? 1 : 0),
        },
      });
    }
    await this.pending;
  }

  private pending: Promise<unknown> = Promise.resolve();

  private write(entry: { actor: string; details: { [key: string]: JsonValue } }): void {
    const written = this.audit
      .append({ actor: entry.actor, action: RATE_LIMITED_ACTION, subject: '', outcome: 'refused', details: entry.details })
      .catch((error: unknown) => this.logger.warn({ error: (error as Error).message }, 'a rate-limit audit record could not be written'));
    this.pending = Promise.all([this.pending, written]);
  }

  /** Resolves once every record asked for so far is written (or its failure logged). */
  async settled(): Promise<void> {
    await this.pending;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    await this.flush().catch(() => undefined);
    await this.pending;
  }
}
