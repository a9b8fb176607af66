import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { formatTable } from './measure';

/** dist/bench/agent-startup.bench.js → dist/apps/agent/src/main.js (built by `npm run bench`). */
const AGENT = join(__dirname, '..', 'apps', 'agent', 'src', 'main.js');

/** Wall time of one process start to exit, in ms; a failed run stops the bench rather than count. */
function timeRun(args: readonly string[]): number {
  const started = performance.now();
  const run = spawnSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  const elapsed = performance.now() - started;
  if (run.status !== 0) {
    throw new Error(`node ${args.join(' ')} exited with ${String(run.status ?? run.signal)}: ${run.stderr.toString('utf8')}`);
  }
  return elapsed;
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/**
 * `rackseal-agent --help` against bare `node -e 0` (issue 10: the agent runs at boot from an
 * initramfs, so its start may cost at most 1.3× Node's own). The two alternate run by run, so load
 * on the machine falls on both alike; medians, since a start is occasionally delayed by the scheduler.
 */
export async function agentStartupBench(runs = Number(process.env.RACKSEAL_BENCH_RUNS ?? 30)): Promise<string> {
  const commands = [
    { label: '`node -e 0`', args: ['-e', '0'] },
    { label: '`rackseal-agent --help`', args: [AGENT, '--help'] },
    { label: '`rackseal-agent --version`', args: [AGENT, '--version'] },
  ];
  for (const command of commands) {
    timeRun(command.args); // warm the page cache
  }
  const samples = commands.map(() => [] as number[]);
  for (let i = 0; i < runs; i += 1) {
    commands.forEach((command, c) => samples[c]!.push(timeRun(command.args)));
  }
  const base = median(samples[0]!);
  const rows = commands.map((command, c) => {
    const values = samples[c]!;
    return [command.label, `${median(values).toFixed(1)} ms`, `${Math.min(...values).toFixed(1)} ms`, `${(median(values) / base).toFixed(2)}×`];
  });
  return `${runs} alternating runs each, \`node ${AGENT.slice(AGENT.indexOf('dist'))}\`.\n\n${formatTable([['command', 'median', 'min', 'ratio to node -e 0'], ...rows])}`;
}

if (require.main === module) {
  agentStartupBench().then(
    (table) => process.stdout.write(`${table}\n`),
    (error: unknown) => {
      process.stderr.write(`bench failed: ${(error as Error).message}\n`);
      process.exit(1);
    },
  );
}
