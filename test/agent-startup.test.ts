/**
 * Issue 10 item 4: `rackseal-agent --help` runs at boot and must start within 1.3× of bare `node -e 0`
 * (measured in bench/agent-startup.bench.ts; no timing here). What keeps it there is structural, so
 * that is what these tests hold: the help and version paths load exactly the files listed below, no
 * package from node_modules, and never create Node's stdout stream (for a pipe, `net`, `stream` and
 * some twenty internal modules). Each extra file also costs a module resolution, and past about nine
 * of them V8 starts optimising Node's own path code in the background, which the exit then waits for.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { runAgentCli } from './support/cli-runner';
import { repoRoot } from './support/repo-root';

/** Every file `--help` and `--version` may load, relative to dist/. */
const START_UP_FILES = [
  'apps/agent/src/commands/tpm.command.js',
  'apps/agent/src/main.js',
  'libs/command-line/src/cli-error.js',
  'libs/command-line/src/closed-output.js',
  'libs/command-line/src/command-tree.js',
  'libs/command-line/src/exit-codes.js',
  'libs/command-line/src/run-command-line.js',
  'libs/command-line/src/version.js',
];

interface Loaded {
  /** require.cache: every CommonJS file loaded, the hook itself excepted. */
  readonly files: string[];
  /** process.moduleLoadList: Node's own modules, as `NativeModule net`. */
  readonly builtins: string[];
}

describe('rackseal-agent start-up path (issue 10 item 4)', () => {
  let dir: string;
  let hook: string;
  let report: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rackseal-agent-startup-'));
    hook = join(dir, 'loaded.js');
    report = join(dir, 'loaded.json');
    writeFileSync(
      hook,
      `process.on('exit', () => require('node:fs').writeFileSync(${JSON.stringify(report)}, JSON.stringify({ files: Object.keys(require.cache).filter((f) => f !== __filename), builtins: process.moduleLoadList })));\n`,
    );
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** Runs the built agent with the hook; it must succeed quietly. */
  function loadedBy(args: readonly string[]): { stdout: string; loaded: Loaded } {
    rmSync(report, { force: true });
    const run = runAgentCli(args, { nodeArgs: ['--require', hook] });
    expect([run.status, run.stderr]).toEqual([0, '']);
    return { stdout: run.stdout, loaded: JSON.parse(readFileSync(report, 'utf8')) as Loaded };
  }

  it.each([[['--help']], [['--version']], [['tpm', '--help']], [['tpm', 'info', '--help']], [['tpm', 'quote', '--help']], [['tpm', 'quote', '-h']], [['enroll', '--help']], [['status', '--help']], [['run', '--help']], [['unlock', '--help']]])(
    '%j loads only the start-up files, nothing from node_modules, and no stdout stream',
    (args) => {
      const { stdout, loaded } = loadedBy(args);
      expect(stdout).toMatch(args[0] === '--version' ? /^\d+\.\d+\.\d+\n$/ : /^Usage: rackseal-agent /);
      const dist = join(repoRoot(), 'dist');
      expect(loaded.files.map((f) => relative(dist, f)).sort()).toEqual(START_UP_FILES);
      expect(loaded.builtins.filter((m) => m === 'NativeModule net' || m === 'NativeModule stream' || m === 'NativeModule tty')).toEqual([]);
    },
  );

  it('the list is not vacuous: a run that reports a usage mistake creates the stderr stream, and its name shows in the list', () => {
    rmSync(report, { force: true });
    const run = runAgentCli(['tpm', 'nosuch'], { nodeArgs: ['--require', hook] });
    expect(run.status).toBe(2);
    expect(run.stderr).toBe("rackseal-agent: unknown command 'nosuch' (see rackseal-agent tpm --help)\n");
    const loaded = JSON.parse(readFileSync(report, 'utf8')) as Loaded;
    expect(loaded.builtins).toContain('NativeModule net');
  });
});
