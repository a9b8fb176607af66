import { MetricsRegistry, type ScrapeSource } from './metrics-registry';

/** A source whose reads hang, as PostgreSQL's do behind a table lock or a network that drops packets. */
function hangingSource(gauge: ReturnType<MetricsRegistry['gauge']>, labels: Record<string, string> = {}): ScrapeSource & { calls: number; release: () => void } {
  let release: () => void = () => undefined;
  const hung = new Promise<void>((resolve) => (release = resolve));
  const source = {
    name: 'machines',
    calls: 0,
    refresh: async () => {
      source.calls += 1;
      await hung;
      gauge.set(labels, 7);
    },
    clear: () => gauge.reset(),
    release: () => release(),
  };
  return source;
}

describe('MetricsRegistry scrape sources', () => {
  it('answers a scrape when a source hangs: that source is down with no samples, the others are served', async () => {
    const metrics = new MetricsRegistry();
    metrics.sourceRefreshTimeoutMs = 50;
    // Labelled, as the fleet gauges are: an unlabelled gauge always renders a sample.
    const stuckGauge = metrics.gauge('rackseal_test_stuck', 'read from the hung source', ['state']);
    const okGauge = metrics.gauge('rackseal_test_ok', 'read from a healthy source');
    const stuck = hangingSource(stuckGauge, { state: 'attested' });
    stuckGauge.set({ state: 'attested' }, 3);
    metrics.addSource(stuck);
    metrics.addSource({ name: 'audit', refresh: async () => void okGauge.set(5), clear: () => okGauge.reset() });

    const text = await metrics.render();

    expect(text).toContain('rackseal_metrics_source_up{source="machines"} 0');
    expect(text).toContain('rackseal_metrics_source_up{source="audit"} 1');
    expect(text).toContain('rackseal_test_ok 5');
    expect(text).not.toMatch(/^rackseal_test_stuck\{/m);
    stuck.release();
  });

  it('does not start a second read of a source whose first one still hangs (no pile-up of pool connections)', async () => {
    const metrics = new MetricsRegistry();
    metrics.sourceRefreshTimeoutMs = 50;
    const stuck = hangingSource(metrics.gauge('rackseal_test_stuck', 'read from the hung source'));
    metrics.addSource(stuck);

    await metrics.render();
    const second = await metrics.render();

    expect([stuck.calls, second.includes('rackseal_metrics_source_up{source="machines"} 0')]).toEqual([1, true]);
    stuck.release();
  });
});
