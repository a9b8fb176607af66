import { DELIVERY_STATES, type DeliveriesRepository } from '@rackseal/deliveries';
import type { MetricsRegistry } from '../metrics-registry';

/**
 * Deliveries per state (libs/deliveries delivery-state.ts), read from PostgreSQL at scrape time:
 * fleet-wide. `pending` growing while `ready`/`acked` do not is a stuck worker; `failed` is the dead
 * letter an operator retries.
 */
export function registerDeliveryGauges(metrics: MetricsRegistry, deliveries: DeliveriesRepository): void {
  const byState = metrics.gauge('rackseal_deliveries', 'Deliveries per state, fleet-wide (every secret version, every machine).', ['state']);
  metrics.addSource({
    name: 'deliveries',
    refresh: async () => {
      const counts = await deliveries.countAllByState();
      for (const state of DELIVERY_STATES) {
        byState.set({ state }, counts[state]);
      }
    },
    clear: () => byState.reset(),
  });
}
