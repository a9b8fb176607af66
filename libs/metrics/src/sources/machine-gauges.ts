import { MACHINE_STATES, type MachinesRepository } from '@rackseal/machines';
import type { Clock } from '@rackseal/platform';
import type { MetricsRegistry } from '../metrics-registry';

/**
 * Machines per lifecycle state and the fleet's liveness (issue 12 item 7, keylime#1896): a dead agent
 * or verifier leaves machines unattested without any refusal to see, so these gauges rising are the
 * alert. Read from PostgreSQL through MachinesRepository at scrape time: fleet-wide. Every state is
 * listed (0 included) so a series never vanishes; groups are operator-defined names (GROUP_PATTERN),
 * so their cardinality is the number of groups; machines without a group are `group=""`.
 */
export function registerMachineGauges(metrics: MetricsRegistry, machines: MachinesRepository, clock: Clock, fleetIntervalMs: number): void {
  const byState = metrics.gauge('rackseal_machines', 'Machines per lifecycle state.', ['state']);
  const overdue = metrics.gauge(
    'rackseal_machines_not_attested_within_interval',
    "Machines (revoked ones left out) with no successful attestation within their group's attestation interval (MACHINE_ATTESTATION_INTERVAL_MS for a group without its own), per state.",
    ['state'],
  );
  metrics
    .gauge('rackseal_machine_attestation_interval_seconds', 'MACHINE_ATTESTATION_INTERVAL_MS: the fleet default interval, for groups without their own.')
    .set(fleetIntervalMs / 1000);
  const groupOverdue = metrics.gauge(
    'rackseal_group_machines_not_attested_within_interval',
    'Machines (revoked ones left out) with no successful attestation within their group\'s interval, per group (group="" for machines without one).',
    ['group'],
  );
  const groupInterval = metrics.gauge(
    'rackseal_group_attestation_interval_seconds',
    "The attestation interval each group's machines are held to: its own, else MACHINE_ATTESTATION_INTERVAL_MS.",
    ['group'],
  );
  const all = [byState, overdue, groupOverdue, groupInterval];
  metrics.addSource({
    name: 'machines',
    refresh: async () => {
      const [counts, late] = await Promise.all([machines.countByState(), machines.countOverdue(clock.now(), fleetIntervalMs)]);
      // Reset first: a group that no longer exists must lose its series.
      all.forEach((gauge) => gauge.reset());
      for (const state of MACHINE_STATES) {
        byState.set({ state }, counts[state]);
        if (state !== 'revoked') {
          overdue.set({ state }, late.byState[state]);
        }
      }
      for (const group of late.byGroup) {
        groupOverdue.set({ group: group.group ?? '' }, group.overdue);
        groupInterval.set({ group: group.group ?? '' }, group.intervalSeconds ?? fleetIntervalMs / 1000);
      }
    },
    clear: () => all.forEach((gauge) => gauge.reset()),
  });
}
