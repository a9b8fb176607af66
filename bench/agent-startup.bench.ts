import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTable } from './measure';

/** dist/bench/agent-startup.bench.js → dist/apps/agent/src/main.js (built by `npm run bench`). */
const AGENT = join(__dirname, '..', 'apps', 'agent', 'src', 'main.js');

/** GNU time, for the CPU time of each run (user + system), which waiting for a busy CPU does not inflate. */
const GNU_TIME = '/usr/bin/time';

interface Sample {
  readonly wallMs: number;
  readonly cpuMs: number | undefined;
}

/** One process, start to exit; a failed run stops the bench rather than count. */
function timeRun(args: readonly string[], scratch: string): Sample {
  const report = join(scratch, 'time');
  const withTime = existsSync(GNU_TIME);
  const [file, argv] = withTime ? [GNU_TIME, ['-o', report, '-f', '%U %S', process.execPath, ...args]] : [process.execPath, [...args]];
  const started = performance.now();
  const run = spawnSync(file, argv, { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  const wallMs = performance.now() - started;
  if (run.status !== 0) {
    throw new Error(`node ${args.join(' ')} exited with ${String(run.status ?? run.signal)}: ${run.stderr.toString('utf8')}`);
  }
  const cpu = withTime ? readFileSync(report, 'utf8').trim().split(/\s+/).map(Number) : [];
  return { wallMs, cpuMs: cpu.length === 2 ? (cpu[0]! + cpu[1]!) * 1000 : undefined };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
};

/**
 * `rackseal-agent --help` against bare `node -e 0` (issue 10: the agent runs at boot from an
 * initramfs, so its start may cost at most 1.3× Node's own). The commands alternate run by run, so
 * load on the machine falls on all alike; medians, since a start is now and then delayed by the
 * scheduler; wall time, and CPU time (user + system, GNU time's 10 ms resolution), which a busy
 * machine inflates less.
 */
export async function agentStartupBench(runs = Number(process.env.RACKSEAL_BENCH_RUNS ?? 30)): Promise<string> {
  const commands = [
    { label: '`node -e 0`', args: ['-e', '0'] },
    // What parsing arguments with commander would cost before rackseal runs a line (why the agent does not).
    { label: "`node -e \"require('commander')\"`", args: ['-e', "require('commander')"] },
    { label: '`rackseal-agent --help`', args: [AGENT, '--help'] },
    { label: '`rackseal-agent --version`', args: [AGENT, '--version'] },
    { label: '`rackseal-agent tpm quote --help`', args: [AGENT, 'tpm', 'quote', '--help'] },
  ];
  const scratch = mkdtempSync(join(tmpdir(), 'rackseal-startup-'));
  try {
    for (const command of commands) {
      timeRun(command.args, scratch); // warm the page cache
    }
    const samples = commands.map(() => [] as Sample[]);
    for (let i = 0; i < runs; i += 1) {
      commands.forEach((command, c) => samples[c]!.push(timeRun(command.args, scratch)));
    }
    const wall = samples.map((s) => median(s.map((x) => x.wallMs)));
    const cpu = samples.map((s) => (s.every((x) => x.cpuMs !== undefined) ? median(s.map((x) => x.cpuMs!)) : undefined));
    const ratio = (value: number | undefined, of: number | undefined) => (value === undefined || of === undefined ? '–' : `${(value / of).toFixed(2)}×`);
    const ms = (value: number | undefined) => (value === undefined ? '–' : `${value.toFixed(1)} ms`);
    const rows = commands.map((command, c) => [command.label, ms(wall[c]), ratio(wall[c], wall[0]), ms(cpu[c]), ratio(cpu[c], cpu[0])]);
    const header = ['command', 'wall (median)', 'wall / node -e 0', 'CPU (median)', 'CPU / node -e 0'];
    return `${runs} alternating runs each; rackseal-agent is \`node ${AGENT.slice(AGENT.indexOf('dist'))}\`.\n\n${formatTable([header, ...rows])}`;
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
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
