import { Global, Module } from '@nestjs/common';
import { MetricsListenerHost } from './metrics-listener.host';
import { MetricsRegistry } from './metrics-registry';

/** One registry per server process and its optional listener (METRICS_PORT), shared by every module. */
@Global()
@Module({ providers: [MetricsRegistry, MetricsListenerHost], exports: [MetricsRegistry, MetricsListenerHost] })
export class MetricsModule {}
