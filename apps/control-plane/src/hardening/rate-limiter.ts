import { Inject, Injectable, Logger, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { createRedisConnection, type RedisClient } from '@rackseal/jobs';
import { TOKEN_BUCKET_SCRIPT } from './token-bucket.lua';

/** Whose requests a bucket counts: one client address, or one authenticated credential. */
export type RateLimitScope = 'address' | 'credential';

export type RateLimitVerdict = { readonly allowed: true } | { readonly allowed: false; readonly retryAfterSeconds: number };

const ALLOWED: RateLimitVerdict = { allowed: true };

/** How often a limiter that cannot reach Redis says so in the log, at most. */
const UNAVAILABLE_LOG_INTERVAL_MS = 60_000;

interface WithTokenBucket {
  racksealTakeToken(key: string, rate: number, capacity: number): Promise<[number, number]>;
}

/**
 * The request rate limits of the node and operator APIs (docs/guide/hardening.md): a token bucket
 * per client address and per credential in Redis, shared by every control plane replica, under
 * `{QUEUE_PREFIX}:rate:` (the deployment's hash tag, so the keys live in the slot of the queues on
 * a Redis Cluster). When Redis cannot answer at once the request goes through: the limits protect
 * the service's capacity, while PostgreSQL and the node credentials, not Redis, decide what a
 * caller may do; an outage of the cache must not stop a fleet's acks (docs/decisions.md).
 */
@Injectable()
export class RateLimiter implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(RateLimiter.name);
  private redis: (RedisClient & WithTokenBucket) | undefined;
  private lastUnavailableLogMs = 0;

  constructor(@Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig) {}

  /** Connects at boot when a limit is on: the client queues nothing, so a first request would find it still connecting. */
  onModuleInit(): void {
    if (this.enabled) {
      this.client();
    }
  }

  /** Whether any limit is on (a rate of 0 turns one off). */
  get enabled(): boolean {
    return this.rateOf('address') > 0 || this.rateOf('credential') > 0;
  }

  rateOf(scope: RateLimitScope): number {
    const limits = this.config.http.rateLimit;
    return scope === 'address' ? limits.addressPerSecond : limits.credentialPerSecond;
  }

  /** Takes one token from `key`'s bucket of `scope`. */
  async take(scope: RateLimitScope, key: string): Promise<RateLimitVerdict> {
    const rate = this.rateOf(scope);
    if (rate === 0) {
      return ALLOWED;
    }
    const capacity = Math.max(1, rate * this.config.http.rateLimit.burstSeconds);
    try {
      const [taken, waitMs] = await this.client().racksealTakeToken(this.keyOf(scope, key), rate, capacity);
      // RFC 9110 §10.2.3: whole seconds; at least one, so a client that honours it is let through.
      return taken === 1 ? ALLOWED : { allowed: false, retryAfterSeconds: Math.max(1, Math.ceil(waitMs / 1000)) };
    } catch (error) {
      const now = Date.now();
      if (now - this.lastUnavailableLogMs >= UNAVAILABLE_LOG_INTERVAL_MS) {
        this.lastUnavailableLogMs = now;
        this.logger.warn({ error: (error as Error).message }, 'rate limits not applied: Redis did not answer (requests go through until it does)');
      }
      return ALLOWED;
    }
  }

  /** `{QUEUE_PREFIX}:rate:<scope>:<key>`. */
  keyOf(scope: RateLimitScope, key: string): string {
    return `${this.config.redis.keyPrefix}:rate:${scope}:${key}`;
  }

  private client(): RedisClient & WithTokenBucket {
    if (this.redis === undefined) {
      const redis = createRedisConnection(this.config, 'rate-limiter');
      // defineCommand sends EVALSHA and falls back to EVAL once when Redis does not know the script.
      redis.defineCommand('racksealTakeToken', { numberOfKeys: 1, lua: TOKEN_BUCKET_SCRIPT });
      this.redis = redis as RedisClient & WithTokenBucket;
    }
    return this.redis;
  }

  onApplicationShutdown(): void {
    this.redis?.disconnect();
    this.redis = undefined;
  }
}
