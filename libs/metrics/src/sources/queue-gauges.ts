import { JOB_COUNT_STATES, type JobQueue } from '@rackseal/jobs';
import type { MetricsRegistry } from '../metrics-registry';

/**
 * Queue depths per BullMQ queue and job state, read from Redis at scrape time (JobQueue.jobCounts):
 * the same for every worker. `waiting` that keeps growing means the workers do not keep up.
 */
export function registerQueueGauges(metrics: MetricsRegistry, queue: JobQueue): void {
  const jobs = metrics.gauge('rackseal_queue_jobs', 'Jobs per queue and BullMQ state (completed ones are kept a week), fleet-wide.', ['queue', 'state']);
  metrics.addSource({
    name: 'queues',
    refresh: async () => {
      const counts = await queue.jobCounts();
      for (const [name, byState] of Object.entries(counts)) {
        for (const state of JOB_COUNT_STATES) {
          jobs.set({ queue: name, state }, byState[state] ?? 0);
        }
      }
    },
    clear: () => jobs.reset(),
  });
}
