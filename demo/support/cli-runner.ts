import { type ChildProcessWithoutNullStreams, spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { join } from 'node:path';
import { onWorkerExit } from './exit-guard';
import { repoRoot } from './repo-root';

/** The built command-line programs, as `npm run build` leaves them (package.json `bin`). */
export const RACKSEAL_ENTRY = join(repoRoot(), 'dist/apps/cli/src/main.js');
export const AGENT_ENTRY = join(repoRoot(), 'dist/apps/agent/src/main.js');

export type CliProgram = 'rackseal' | 'rackseal-agent';

const ENTRY: Record<CliProgram, string> = { rackseal: RACKSEAL_ENTRY, 'rackseal-agent': AGENT_ENTRY };

/** How one run of a built program ended (status null: killed, e.g. by the timeout). */
export interface CliRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunOptions {
  /** Added to PATH and HOME: the only variables a run gets, so nothing leaks in from the test runner. */
  readonly env?: NodeJS.ProcessEnv;
  /** Node options before the entry point, e.g. `['--require', hook]`. */
  readonly nodeArgs?: readonly string[];
  /** Standard input (default none), given through the socket Node makes for a child's stdin. */
  readonly input?: string | Buffer;
  /** stdio for sync runs, e.g. stdout on /dev/full (the output is then not captured). */
  readonly stdio?: StdioOptions;
  /** Default: the repository root, so relative paths in arguments mean what they mean in a checkout. */
  readonly cwd?: string;
  /** The run is killed (SIGKILL) after this long; default 60 s. */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Runs the built `rackseal` CLI to completion (blocking). */
export function runRacksealCli(args: readonly string[], options: CliRunOptions = {}): CliRun {
  return runSync('rackseal', args, options);
}

/** Runs the built `rackseal-agent` to completion (blocking). */
export function runAgentCli(args: readonly string[], options: CliRunOptions = {}): CliRun {
  return runSync('rackseal-agent', args, options);
}

/**
 * Runs the built `rackseal` CLI without blocking this process: needed whenever this process must keep
 * serving while the CLI runs (a control plane created in-process, a swtpm socket, a TCP proxy), which
 * a spawnSync would deadlock.
 */
export function runRacksealCliAsync(args: readonly string[], options: CliRunOptions = {}): Promise<CliRun> {
  return runAsync('rackseal', args, options);
}

/** runRacksealCliAsync for `rackseal-agent`. */
export function runAgentCliAsync(args: readonly string[], options: CliRunOptions = {}): Promise<CliRun> {
  return runAsync('rackseal-agent', args, options);
}

/** Async runs not yet closed: each one's process and the promise of its close. */
const inFlight = new Set<{ readonly child: ChildProcessWithoutNullStreams; readonly closed: Promise<unknown> }>();
let ending = false;

/**
 * Ends every async run still going (SIGKILL), waits until each has closed, and refuses runs and
 * spawns from then on. For a clean-up that removes the files those runs write: the demo's Ctrl-C
 * came while `rackseal-agent enroll` ran, the clean-up removed the demo's directory, and the enroll
 * wrote its state directory back before the exit killed it.
 */
export async function endRunsInFlight(): Promise<void> {
  ending = true;
  await Promise.all(
    [...inFlight].map(({ child, closed }) => {
      child.kill('SIGKILL');
      return closed;
    }),
  );
}

/** Starts a built program with piped stdio and leaves it to the caller (tests that close its stdout early). */
export function spawnCli(program: CliProgram, args: readonly string[], options: CliRunOptions = {}): ChildProcessWithoutNullStreams {
  if (ending) {
    throw new Error(`${program} not started: the runs in flight were ended (cleaning up)`);
  }
  return spawn(process.execPath, commandLine(program, args, options), {
    cwd: options.cwd ?? repoRoot(),
    env: environment(options),
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  }) as unknown as ChildProcessWithoutNullStreams;
}

function runSync(program: CliProgram, args: readonly string[], options: CliRunOptions): CliRun {
  const result = spawnSync(process.execPath, commandLine(program, args, options), {
    cwd: options.cwd ?? repoRoot(),
    env: environment(options),
    encoding: 'utf8',
    timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.stdio === undefined ? {} : { stdio: options.stdio }),
  });
  if (result.error !== undefined) {
    throw result.error;
  }
  return { status: result.status, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

function runAsync(program: CliProgram, args: readonly string[], options: CliRunOptions): Promise<CliRun> {
  if (options.stdio !== undefined) {
    throw new Error('runAsync: stdio is for the sync runners');
  }
  return new Promise((resolve, reject) => {
    const child = spawnCli(program, args, options);
    // No run outlives this process (a demo ended by Ctrl-C mid-command, a jest worker exiting).
    const unregister = onWorkerExit(() => child.kill('SIGKILL'));
    child.once('close', unregister);
    const run = { child, closed: new Promise((settled) => (child.once('close', settled), child.once('error', settled))) };
    inFlight.add(run);
    void run.closed.then(() => inFlight.delete(run));
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

function commandLine(program: CliProgram, args: readonly string[], options: CliRunOptions): string[] {
  return [...(options.nodeArgs ?? []), ENTRY[program], ...args];
}

function environment(options: CliRunOptions): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, ...options.env };
}
