/**
 * Issue 9 item 12: `rackseal ek inspect big.der | head -c 10` died with an EPIPE stack trace. A reader
 * that goes away ends rackseal and rackseal-agent quietly with 141 (128 + SIGPIPE, what a shell
 * reports for git or cat in the same pipe); any other output failure is named and exits 2.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixturePath } from './support/fixtures';
import { type CliProgram, runAgentCli, runRacksealCli, spawnCli } from './support/cli-runner';
import { repoRoot } from './support/repo-root';

const RACKSEAL: CliProgram = 'rackseal';
const AGENT: CliProgram = 'rackseal-agent';
const HCRTM_LOG = fixturePath('eventlogs', 'tpm2-tss_binary_measurements_hcrtm.bin');

interface PipedRun {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  /** What the reader took before it closed the pipe. */
  readonly read: Buffer;
  readonly stderr: string;
}

/** Runs `program ...args` with stdout on a pipe whose reader closes after `bytes` bytes (0: before any output). */
function runIntoReaderClosingAfter(bytes: number, program: CliProgram, ...args: string[]): Promise<PipedRun> {
  const child = spawnCli(program, args);
  const read: Buffer[] = [];
  let total = 0;
  let stderr = '';
  if (bytes === 0) {
    child.stdout.destroy();
  } else {
    child.stdout.on('data', (chunk: Buffer) => {
      read.push(chunk);
      total += chunk.length;
      if (total >= bytes) {
        child.stdout.destroy();
      }
    });
  }
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString('utf8');
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, read: Buffer.concat(read), stderr }));
  });
}

describe('a closed stdout ends rackseal and rackseal-agent quietly', () => {
  let dir: string;
  let bigCert: string;

  beforeAll(() => {
    // A self-signed certificate whose subject (and so issuer) holds 1,800 OUs: `ek inspect` prints ~230 kB,
    // far more than a pipe buffers, so the CLI is still writing when the reader goes away.
    dir = mkdtempSync(join(tmpdir(), 'rackseal-closed-output-'));
    bigCert = join(dir, 'big.der');
    const subject = Array.from({ length: 1800 }, (_, i) => `/OU=u${String(i).padStart(4, '0')}${'x'.repeat(55)}`).join('');
    const key = join(dir, 'key.pem');
    for (const args of [
      ['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', key],
      ['req', '-new', '-x509', '-key', key, '-subj', subject, '-days', '1', '-outform', 'DER', '-out', bigCert],
    ]) {
      const run = spawnSync('openssl', args, { encoding: 'utf8' });
      expect(run.status).toBe(0);
    }
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('prints the whole inspection to a reader that reads it all (exit 0)', async () => {
    const run = await runIntoReaderClosingAfter(Number.MAX_SAFE_INTEGER, RACKSEAL, 'ek', 'inspect', bigCert);
    expect(run).toMatchObject({ status: 0, signal: null, stderr: '' });
    expect(run.read.length).toBeGreaterThan(200_000);
  });

  it.each([
    ['rackseal ek inspect big.der | head -c 10', 10, RACKSEAL, ['ek', 'inspect']],
    ['rackseal ek inspect --json big.der | head -c 10', 10, RACKSEAL, ['ek', 'inspect', '--json']],
  ])('%s: exit 141, no stack trace', async (_, bytes, program, args) => {
    const run = await runIntoReaderClosingAfter(bytes, program, ...args, bigCert);
    expect(run).toMatchObject({ status: 141, signal: null, stderr: '' });
    expect(run.read.length).toBeGreaterThanOrEqual(10);
    expect(run.read.subarray(0, 10).toString('utf8')).toBe(args.includes('--json') ? '{"manufact' : 'manufactur');
  });

  it.each([
    ['rackseal eventlog replay', RACKSEAL, ['eventlog', 'replay', HCRTM_LOG]],
    ['rackseal eventlog replay --json', RACKSEAL, ['eventlog', 'replay', '--json', HCRTM_LOG]],
    ['rackseal --help (commander writes it)', RACKSEAL, ['--help']],
    ['rackseal --version', RACKSEAL, ['--version']],
    ['rackseal-agent --help', AGENT, ['--help']],
    ['rackseal-agent --version', AGENT, ['--version']],
    ['rackseal-agent tpm --help', AGENT, ['tpm', '--help']],
  ])('%s into a reader already gone: exit 141, no stack trace', async (_, program, args) => {
    const run = await runIntoReaderClosingAfter(0, program, ...args);
    expect(run).toMatchObject({ status: 141, signal: null, stderr: '' });
  });

  it('installs its guard without creating the streams, and puts it on each stream when Node creates it', () => {
    // stdout and stderr on pipes: creating either stream loads net (a socket on the pipe).
    const closedOutput = join(repoRoot(), 'dist/libs/command-line/src/closed-output.js');
    const script = [
      `require(${JSON.stringify(closedOutput)}).endQuietlyOnClosedOutput('t');`,
      "const before = process.moduleLoadList.filter((m) => ['NativeModule net', 'NativeModule tty', 'NativeModule internal/fs/sync_write_stream'].includes(m));",
      "const after = [process.stdout.listenerCount('error'), process.stderr.listenerCount('error'), process.stdout === process.stdout];",
      "require('node:fs').writeSync(1, JSON.stringify({ before, after }));",
    ].join('\n');
    const run = spawnSync(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
    expect([run.status, run.stderr, JSON.parse(run.stdout) as unknown]).toEqual([0, '', { before: [], after: [1, 1, true] }]);
  });

  it('names any other output failure (a full disk behind >) and exits 2, without a stack trace', () => {
    const full = openSync('/dev/full', 'w');
    for (const [program, run, args] of [[RACKSEAL, runRacksealCli, ['--help']], [AGENT, runAgentCli, ['--help']], [AGENT, runAgentCli, ['--version']]] as const) {
      const ran = run(args, { stdio: ['ignore', full, 'pipe'] });
      expect(ran.status).toBe(2);
      expect(ran.stderr).toBe(`${program}: cannot write to standard output: ENOSPC\n`);
    }
  });
});
