import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import type { Server } from 'node:http';
import { listenerPort, startMetricsListener } from './metrics-listener';
import { MetricsRegistry } from './metrics-registry';

/**
 * Starts this process's metrics listener when METRICS_PORT is set (docs/guide/observability.md) and
 * closes it at shutdown. A port that cannot be bound stops the boot: an operator who asked for
 * metrics there must not get a process that silently has none.
 */
@Injectable()
export class MetricsListenerHost implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Metrics');
  private server: Server | undefined;

  constructor(
    private readonly metrics: MetricsRegistry,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  /** Whether /metrics is served by this listener (so the control plane's API port does not serve it). */
  get enabled(): boolean {
    return this.config.metrics.port !== 0;
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) {
      return;
    }
    const { host, port } = this.config.metrics;
    this.server = await startMetricsListener(this.metrics, host, port);
    this.logger.log({ host, port: listenerPort(this.server) }, `metrics listening on ${host}:${listenerPort(this.server)}`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server !== undefined) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
