import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatTable, median } from './measure';

/** dist/bench/agent-startup.bench.js → dist/apps/agent/src/main.js (built by `npm run bench`). */
const AGENT = join(__dirname, '..', 'apps', 'agent', 'src', 'main.js');

interface Sample {
  readonly wallMs: number;
  /** user + system time of the whole process (all its threads), as it reports at exit. */
  readonly cpuMs: number;
}

/**
 * A `--require` hook that writes the process's CPU time at exit. Loaded into both sides alike; CPU
 * time is what a busy machine inflates least (waiting for a core is not counted).
 */
function cpuHook(scratch: string): { hook: string; report: string } {
  const report = join(scratch, 'cpu');
  const hook = join(scratch, 'cpu-hook.js');
  writeFileSync(hook, `process.on('exit', () => { const u = process.cpuUsage(); require('node:fs').writeFileSync(${JSON.stringify(report)}, String(u.user + u.system)); });\n`);
  return { hook, report };
}

/** One process, start to exit; a failed run stops the bench rather than count. */
function timeRun(args: readonly string[], cpu: { hook: string; report: string }): Sample {
  const started = performance.now();
  const run = spawnSync(process.execPath, ['--require', cpu.hook, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH } });
  const wallMs = performance.now() - started;
  if (run.status !== 0) {
    throw new Error(`node ${args.join(' ')} exited with ${String(run.status ?? run.signal)}: ${run.stderr.toString('utf8')}`);
  }
  return { wallMs, cpuMs: Number(readFileSync(cpu.report, 'utf8')) / 1000 };
}

/**
 * `rackseal-agent --help` against bare `node -e 0` (issue 10: the agent runs at boot from an
 * initramfs, so its start may cost at most 1.3× Node's own). The commands alternate run by run, so
 * load on the machine falls on all alike; medians, since a start is now and then delayed by the
 * scheduler; wall time, and CPU time (user + system), which a busy machine inflates less.
 */
export async function agentStartupBench(runs = Number(process.env.RACKSEAL_BENCH_RUNS ?? 30)): Promise<string> {
  const commands = [
    { label: '`node -e 0`', args: ['-e', '0'] },
    // The floor for any program that prints: Node creates its stdout stream (a pipe here) on first use.
    { label: "`node -e \"process.stdout.write('x')\"`", args: ['-e', "process.stdout.write('x')"] },
    // What parsing arguments with commander would cost before rackseal runs a line (why the agent does not).
    { label: "`node -e \"require('commander')\"`", args: ['-e', "require('commander')"] },
    { label: '`rackseal-agent --help`', args: [AGENT, '--help'] },
    { label: '`rackseal-agent --version`', args: [AGENT, '--version'] },
    { label: '`rackseal-agent tpm quote --help`', args: [AGENT, 'tpm', 'quote', '--help'] },
  ];
  // RACKSEAL_AGENT_BEFORE=<another build's dist/apps/agent/src/main.js>: the same two commands of an
  // older agent, measured in the same run (before/after comparisons).
  const before = process.env.RACKSEAL_AGENT_BEFORE;
  if (before !== undefined && before !== '') {
    commands.push({ label: '`rackseal-agent --help` (RACKSEAL_AGENT_BEFORE)', args: [before, '--help'] });
    commands.push({ label: '`rackseal-agent --version` (RACKSEAL_AGENT_BEFORE)', args: [before, '--version'] });
  }
  const scratch = mkdtempSync(join(tmpdir(), 'rackseal-startup-'));
  const cpuReport = cpuHook(scratch);
  try {
    for (const command of commands) {
      timeRun(command.args, cpuReport); // warm the page cache
    }
    const samples = commands.map(() => [] as Sample[]);
    for (let i = 0; i < runs; i += 1) {
      commands.forEach((command, c) => samples[c]!.push(timeRun(command.args, cpuReport)));
    }
    const wall = samples.map((s) => median(s.map((x) => x.wallMs)));
    const cpu = samples.map((s) => median(s.map((x) => x.cpuMs)));
    // Each run against the `node -e 0` of its own round, a few milliseconds apart: load that comes
    // and goes during the bench falls on both sides of each ratio.
    const paired = samples.map((s) => median(s.map((x, i) => x.wallMs / samples[0]![i]!.wallMs)));
    const ratio = (value: number, of: number) => `${(value / of).toFixed(2)}×`;
    const ms = (value: number) => `${value.toFixed(1)} ms`;
    const rows = commands.map((command, c) => [command.label, ms(wall[c]!), ratio(wall[c]!, wall[0]!), `${paired[c]!.toFixed(2)}×`, ms(cpu[c]!), ratio(cpu[c]!, cpu[0]!)]);
    const header = ['command', 'wall (median)', 'wall / node -e 0', 'per-round wall ratio (median)', 'CPU (median)', 'CPU / node -e 0'];
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
