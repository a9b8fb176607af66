import { Injectable, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { OutboxRelay } from '@rackseal/deliveries';

/**
 * Runs the deliveries' outbox relay in this worker (libs/deliveries outbox-relay.ts): every worker
 * relays, FOR UPDATE SKIP LOCKED keeps them off each other's rows; it also keeps the reconciler's
 * job scheduler in place.
 */
@Injectable()
export class OutboxRelayHost implements OnApplicationBootstrap, OnApplicationShutdown {
  constructor(private readonly relay: OutboxRelay) {}

  onApplicationBootstrap(): void {
    this.relay.start();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.relay.stop();
  }
}
