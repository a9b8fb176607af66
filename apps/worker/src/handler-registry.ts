import { JOB_NAMES, type JobName } from '@rackseal/jobs';

export type JobFunction = (payload: unknown, context: JobContext) => Promise<unknown>;

export interface JobContext {
  readonly jobId: string;
  readonly attempt: number;
}

export interface DiscoveredHandler {
  readonly name: string;
  readonly owner: string;
  readonly run: JobFunction;
}

/** Boot-time refusal: a job without a consumer, or with two, is a deployment bug. */
export class JobHandlerSetError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`job handlers do not match the job catalog:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'JobHandlerSetError';
  }
}

/**
 * Checks that every catalog job has exactly one handler and that no handler claims an unknown job;
 * returns the name → handler table the worker dispatches on.
 */
export function buildHandlerRegistry(
  handlers: readonly DiscoveredHandler[],
  catalog: readonly string[] = JOB_NAMES,
): Map<JobName, DiscoveredHandler> {
  const problems: string[] = [];
  const byName = new Map<string, DiscoveredHandler[]>();
  for (const handler of handlers) {
    byName.set(handler.name, [...(byName.get(handler.name) ?? []), handler]);
  }
  for (const name of catalog) {
    const found = byName.get(name) ?? [];
    if (found.length === 0) {
      problems.push(`job "${name}" has no handler`);
    } else if (found.length > 1) {
      problems.push(`job "${name}" has ${found.length} handlers: ${found.map((h) => h.owner).join(', ')}`);
    }
  }
  for (const [name, found] of byName) {
    if (!catalog.includes(name)) {
      problems.push(`handler ${found.map((h) => h.owner).join(', ')} claims unknown job "${name}"`);
    }
  }
  if (problems.length > 0) {
    throw new JobHandlerSetError(problems);
  }
  return new Map([...byName].map(([name, found]) => [name as JobName, found[0]!]));
}
