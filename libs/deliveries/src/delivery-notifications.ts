import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { createRedisConnection, type RedisClient } from '@rackseal/jobs';

/**
 * "Machine M has a ready delivery", from the worker that sealed it to every control-plane replica
 * (the mailbox's long polls). Injected: Redis pub/sub in the product.
 */
export abstract class DeliveryNotifications {
  /**
   * Tells every subscriber about each of `machineIds` (one message for all of them); never throws (a
   * lost message costs a long poll its wait, not a delivery).
   */
  abstract publish(...machineIds: string[]): Promise<void>;
  /** Calls `listener` with the machine id of every message from now on (resolves once subscribed). */
  abstract subscribe(listener: (machineId: string) => void): Promise<void>;
}

const MACHINE_ID = /^[0-9a-f-]{36}$/;
/** Machine ids one message carries at most (comma-separated): a batch of ready deliveries is one PUBLISH, not one each. */
const IDS_PER_MESSAGE = 256;
/** Longest a sealed delivery's job waits for its notification to be published. */
const PUBLISH_TIMEOUT_MS = 2000;

/**
 * Redis pub/sub on `{QUEUE_PREFIX}:deliveries:ready` (under the hash tag of every rackseal key, config.redis.keyPrefix): one publisher connection, and one subscriber
 * connection per process opened at the first subscribe (the worker never opens it). ioredis
 * subscribes again after a reconnection.
 */
@Injectable()
export class RedisDeliveryNotifications extends DeliveryNotifications implements OnApplicationShutdown {
  private publisher: RedisClient | undefined;
  private subscriber: RedisClient | undefined;
  private subscribed: Promise<void> | undefined;
  private readonly listeners = new Set<(machineId: string) => void>();
  private readonly channel: string;

  constructor(@Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig) {
    super();
    this.channel = `${config.redis.keyPrefix}:deliveries:ready`;
  }

  async publish(...machineIds: string[]): Promise<void> {
    this.publisher ??= createRedisConnection(this.config, 'publisher');
    const ids = [...new Set(machineIds)];
    for (let i = 0; i < ids.length; i += IDS_PER_MESSAGE) {
      const message = ids.slice(i, i + IDS_PER_MESSAGE).join(',');
      let timer: NodeJS.Timeout | undefined;
      try {
        // Bounded: with Redis down, the agent's next poll finds the delivery in PostgreSQL anyway.
        await Promise.race([this.publisher.publish(this.channel, message), new Promise((resolve) => (timer = setTimeout(resolve, PUBLISH_TIMEOUT_MS)))]);
      } catch {
        // Redis refused: the same.
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async subscribe(listener: (machineId: string) => void): Promise<void> {
    this.listeners.add(listener);
    this.subscribed ??= this.open().catch((error: unknown) => {
      // Forgotten, so that the next subscribe opens a new connection rather than failing forever.
      this.subscriber?.disconnect();
      this.subscriber = undefined;
      this.subscribed = undefined;
      throw error;
    });
    await this.subscribed;
  }

  private async open(): Promise<void> {
    this.subscriber = createRedisConnection(this.config, 'subscriber');
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) {
        return;
      }
      for (const machineId of message.split(',', IDS_PER_MESSAGE)) {
        if (MACHINE_ID.test(machineId)) {
          this.listeners.forEach((l) => l(machineId));
        }
      }
    });
    await this.subscriber.subscribe(this.channel);
  }

  onApplicationShutdown(): void {
    this.publisher?.disconnect();
    this.subscriber?.disconnect();
  }
}
