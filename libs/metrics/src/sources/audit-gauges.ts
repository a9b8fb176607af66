import type { AuditLog } from '@rackseal/audit';
import type { MetricsRegistry } from '../metrics-registry';

/**
 * The audit sequencer's backlog (docs/architecture.md §4.9), read from PostgreSQL at scrape time:
 * fleet-wide, the same on every replica and worker. Names kept from the first /metrics (issue 11).
 */
export function registerAuditGauges(metrics: MetricsRegistry, audit: AuditLog, maxMergeDelayMs: number): void {
  const pending = metrics.gauge('rackseal_audit_pending_records', 'Audit records appended but not yet integrated into the tree.');
  const unsigned = metrics.gauge('rackseal_audit_unsigned_records', 'Audit records in the tree but not yet covered by a signed checkpoint.');
  const lag = metrics.gauge(
    'rackseal_audit_sequencer_lag_seconds',
    'The longest a committed audit record has waited for a signed checkpoint, pending or sequenced (0 when none).',
  );
  const treeSize = metrics.gauge('rackseal_audit_tree_size', 'Records integrated into the audit Merkle tree.');
  metrics
    .gauge('rackseal_audit_max_merge_delay_seconds', 'AUDIT_MAX_MERGE_DELAY_MS: the lag past which readiness reports degraded.')
    .set(maxMergeDelayMs / 1000);
  const all = [pending, unsigned, lag, treeSize];
  metrics.addSource({
    name: 'audit',
    refresh: async () => {
      const status = await audit.sequencerStatus();
      pending.set(status.pending);
      unsigned.set(status.unsigned);
      lag.set(Math.max(status.oldestPendingAgeMs, status.unsignedAgeMs) / 1000);
      treeSize.set(status.treeSize);
    },
    clear: () => all.forEach((gauge) => gauge.reset()),
  });
}
