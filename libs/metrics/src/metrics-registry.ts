import { Injectable, Logger } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Refreshes gauges from an outside source (PostgreSQL, Redis) just before a scrape is rendered. */
export interface ScrapeSource {
  /** The `source` label of rackseal_metrics_source_up: `machines`, `deliveries`, `audit`, `queues`. */
  readonly name: string;
  /** Sets the source's gauges. Throws when the source cannot be read. */
  refresh(): Promise<void>;
  /** Called after a failed refresh: the gauges must drop their samples, never report stale values. */
  clear(): void;
}

/**
 * This process's Prometheus registry (prom-client, text format 0.0.4): one per Nest application, not
 * prom-client's global one, so several applications in one process (the test suites) keep their
 * counters apart. Counters and histograms are this process's own; gauges read from PostgreSQL or
 * Redis are fleet-wide and are refreshed at scrape time by their ScrapeSources (one read each,
 * shared by concurrent scrapes). docs/guide/observability.md lists every name.
 */
@Injectable()
export class MetricsRegistry {
  readonly registry = new Registry();
  private readonly logger = new Logger('Metrics');
  private readonly sources: ScrapeSource[] = [];
  private readonly sourceUp: Gauge<'source'>;
  private refreshing: Promise<void> | undefined;
  /** Each source's read in flight: a read that hangs is waited on by later scrapes, never started again. */
  private readonly inFlight = new Map<ScrapeSource, Promise<void>>();
  /**
   * How long a scrape waits for one source. Below Prometheus' default 10 s scrape_timeout, so a
   * PostgreSQL that hangs (a table lock, packets dropped) shows as that source down, not as a scrape
   * that never answers. Writable for tests only.
   */
  sourceRefreshTimeoutMs = 5_000;

  constructor() {
    // process_* and nodejs_* (CPU, memory, event-loop lag, handles): each process's own.
    collectDefaultMetrics({ register: this.registry });
    this.sourceUp = this.gauge('rackseal_metrics_source_up', 'Whether the last scrape could read this source of fleet-wide gauges (1) or not (0: its gauges have no samples).', ['source']);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  counter<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
    return this.existing<Counter<L>>(name) ?? new Counter<L>({ name, help, labelNames, registers: [this.registry] });
  }

  gauge<L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
    return this.existing<Gauge<L>>(name) ?? new Gauge<L>({ name, help, labelNames, registers: [this.registry] });
  }

  histogram<L extends string = never>(name: string, help: string, labelNames: readonly L[], buckets: readonly number[]): Histogram<L> {
    return this.existing<Histogram<L>>(name) ?? new Histogram<L>({ name, help, labelNames, buckets: [...buckets], registers: [this.registry] });
  }

  /** A source of gauges read at scrape time. */
  addSource(source: ScrapeSource): void {
    this.sources.push(source);
    this.sourceUp.set({ source: source.name }, 0);
  }

  /** The text exposition, after refreshing every source (a source that fails is reported, not fatal). */
  async render(): Promise<string> {
    this.refreshing ??= this.refreshSources().finally(() => {
      this.refreshing = undefined;
    });
    await this.refreshing;
    return this.registry.metrics();
  }

  private async refreshSources(): Promise<void> {
    await Promise.all(
      this.sources.map(async (source) => {
        try {
          await this.readWithin(source);
          this.sourceUp.set({ source: source.name }, 1);
        } catch (error) {
          source.clear();
          this.sourceUp.set({ source: source.name }, 0);
          this.logger.warn({ source: source.name, err: (error as Error).message }, 'metrics source unavailable');
        }
      }),
    );
  }

  /** The source's read, shared with any still in flight, or a rejection once sourceRefreshTimeoutMs passed. */
  private readWithin(source: ScrapeSource): Promise<void> {
    let read = this.inFlight.get(source);
    if (read === undefined) {
      read = source.refresh().finally(() => this.inFlight.delete(source));
      this.inFlight.set(source, read);
    }
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${this.sourceRefreshTimeoutMs} ms`)), this.sourceRefreshTimeoutMs);
    });
    return Promise.race([read, deadline]).finally(() => clearTimeout(timer));
  }

  private existing<M>(name: string): M | undefined {
    return this.registry.getSingleMetric(name) as M | undefined;
  }
}
