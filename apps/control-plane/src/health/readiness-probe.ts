import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { createRedisConnection, type RedisClient } from '@rackseal/jobs';
import { DatabasePing } from '@rackseal/persistence';
import { AuditLog } from '@rackseal/audit';
import type { AuditSequencerStatus, DependencyStatus, ReadinessReport } from './dependency-status';

class ProbeTimeout extends Error {}

/** Races a probe against the configured timeout: a hung dependency is a down dependency. */
async function probe(run: () => Promise<unknown>, timeoutMs: number): Promise<DependencyStatus> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      run(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new ProbeTimeout()), timeoutMs);
      }),
    ]);
    return { status: 'up', latencyMs: Math.round(performance.now() - started) };
  } catch (error) {
    return { status: 'down', latencyMs: Math.round(performance.now() - started), reason: describe(error) };
  } finally {
    clearTimeout(timer);
  }
}

// Reasons are generic on purpose: the endpoint is unauthenticated and must not leak hosts or users.
function describe(error: unknown): string {
  if (error instanceof ProbeTimeout) {
    return 'timed out';
  }
  const code = (error as { code?: unknown }).code;
  if (code === 'ECONNREFUSED') {
    return 'connection refused';
  }
  if (typeof code === 'string' && /^[A-Z0-9_]+$/.test(code)) {
    return `unreachable (${code})`;
  }
  return 'unreachable';
}

/** Real round trips to PostgreSQL and Redis, each bounded by READINESS_TIMEOUT_MS. */
@Injectable()
export class ReadinessProbe implements OnApplicationShutdown {
  private readonly redis: RedisClient;

  constructor(
    private readonly database: DatabasePing,
    private readonly audit: AuditLog,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {
    this.redis = createRedisConnection(config, 'health');
  }

  async check(): Promise<ReadinessReport> {
    const timeout = this.config.readinessTimeoutMs;
    const [postgres, redis, audit] = await Promise.all([
      probe(() => this.database.ping(), timeout),
      probe(() => this.redis.ping(), timeout),
      this.auditStatus(timeout),
    ]);
    const ready = postgres.status === 'up' && redis.status === 'up';
    return { status: !ready ? 'unavailable' : audit.status === 'degraded' ? 'degraded' : 'ready', postgres, redis, audit };
  }

  /** The audit sequencer runs in the workers; a lag past the maximum merge delay degrades (not fails) readiness. */
  private async auditStatus(timeoutMs: number): Promise<AuditSequencerStatus> {
    const maxMergeDelayMs = this.config.audit.maxMergeDelayMs;
    let status: Awaited<ReturnType<AuditLog['sequencerStatus']>> | undefined;
    const outcome = await probe(async () => {
      status = await this.audit.sequencerStatus();
    }, timeoutMs);
    if (outcome.status === 'down' || status === undefined) {
      return { status: 'unknown', pending: 0, unsigned: 0, lagMs: 0, maxMergeDelayMs };
    }
    // Lag: the longest any committed record has gone without a signed checkpoint, pending or sequenced.
    const lagMs = Math.max(status.oldestPendingAgeMs, status.unsignedAgeMs);
    return {
      status: lagMs > maxMergeDelayMs ? 'degraded' : 'ok',
      pending: status.pending,
      unsigned: status.unsigned,
      lagMs,
      maxMergeDelayMs,
    };
  }

  onApplicationShutdown(): void {
    this.redis.disconnect();
  }
}
