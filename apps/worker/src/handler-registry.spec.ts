import { JOB_NAMES, type JobName } from '@rackseal/jobs';
import { buildHandlerRegistry, type DiscoveredHandler, JobHandlerSetError } from './handler-registry';

const CATALOG = ['secret.wrap', 'secret.deliver', 'audit.verify-chain'] as const;

function handler(name: string, owner: string): DiscoveredHandler {
  return { name, owner, run: async () => `${owner} ran` };
}

const COMPLETE = [
  handler('secret.wrap', 'WrapJob.run'),
  handler('secret.deliver', 'DeliverJob.run'),
  handler('audit.verify-chain', 'AuditVerifyChainJob.run'),
];

function refusal(handlers: readonly DiscoveredHandler[], catalog: readonly string[] = CATALOG): JobHandlerSetError {
  try {
    buildHandlerRegistry(handlers, catalog);
  } catch (error) {
    if (error instanceof JobHandlerSetError) {
      return error;
    }
    throw error;
  }
  throw new Error('expected buildHandlerRegistry to refuse the handler set');
}

describe('buildHandlerRegistry', () => {
  it('maps every catalog job to its one handler', async () => {
    const registry = buildHandlerRegistry(COMPLETE, CATALOG);
    expect([...registry.keys()].sort()).toEqual([...CATALOG].sort());
    expect(registry.get('secret.wrap' as JobName)?.owner).toBe('WrapJob.run');
    expect(registry.get('secret.deliver' as JobName)?.owner).toBe('DeliverJob.run');
    expect(await registry.get('audit.verify-chain')?.run({}, { jobId: 'j1', attempt: 1 })).toBe('AuditVerifyChainJob.run ran');
  });

  it('does not depend on the order handlers were discovered in', () => {
    const registry = buildHandlerRegistry([...COMPLETE].reverse(), CATALOG);
    expect(registry.size).toBe(3);
    expect(registry.get('secret.wrap' as JobName)?.owner).toBe('WrapJob.run');
  });

  it('checks against the real job catalog by default', () => {
    const handlers = JOB_NAMES.map((name) => handler(name, `${name}.handler`));
    const registry = buildHandlerRegistry(handlers);
    expect([...registry.keys()].sort()).toEqual([...JOB_NAMES].sort());
    expect(() => buildHandlerRegistry([])).toThrow(JobHandlerSetError);
  });

  it('refuses a job without a handler', () => {
    const error = refusal(COMPLETE.filter((h) => h.name !== 'secret.deliver'));
    expect(error.name).toBe('JobHandlerSetError');
    expect(error.problems).toEqual(['job "secret.deliver" has no handler']);
    expect(error.message).toBe('job handlers do not match the job catalog:\n  - job "secret.deliver" has no handler');
  });

  it('refuses a job with two handlers and names both owners', () => {
    const error = refusal([...COMPLETE, handler('secret.wrap', 'OtherWrapJob.handle')]);
    expect(error.problems).toEqual(['job "secret.wrap" has 2 handlers: WrapJob.run, OtherWrapJob.handle']);
  });

  it('refuses a handler for a job the catalog does not know', () => {
    const error = refusal([...COMPLETE, handler('secret.teleport', 'TeleportJob.run')]);
    expect(error.problems).toEqual(['handler TeleportJob.run claims unknown job "secret.teleport"']);
  });

  it('lists every problem at once', () => {
    const error = refusal([
      handler('secret.wrap', 'WrapJob.run'),
      handler('secret.wrap', 'WrapAgainJob.run'),
      handler('audit.verify-chain', 'AuditVerifyChainJob.run'),
      handler('secret.teleport', 'TeleportJob.run'),
      handler('secret.teleport', 'TeleportTooJob.run'),
    ]);
    expect(error.problems).toEqual([
      'job "secret.wrap" has 2 handlers: WrapJob.run, WrapAgainJob.run',
      'job "secret.deliver" has no handler',
      'handler TeleportJob.run, TeleportTooJob.run claims unknown job "secret.teleport"',
    ]);
    expect(error.message.split('\n')).toEqual([
      'job handlers do not match the job catalog:',
      '  - job "secret.wrap" has 2 handlers: WrapJob.run, WrapAgainJob.run',
      '  - job "secret.deliver" has no handler',
      '  - handler TeleportJob.run, TeleportTooJob.run claims unknown job "secret.teleport"',
    ]);
  });

  it('refuses an empty handler set, naming every job', () => {
    const error = refusal([]);
    expect(error.problems).toEqual(CATALOG.map((name) => `job "${name}" has no handler`));
  });
});
