import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DIST } from './support/processes';

// `rackseal … -` reads its standard input. A parent written in Node hands its child a socket as stdin,
// which /dev/stdin cannot open (ENXIO): the reader must use the descriptor itself, and wait for data
// that has not arrived yet rather than take a pause for the end of the input.
const READER = `
const { readInput } = require(${JSON.stringify(join(DIST, 'libs/command-line/src/input-files.js'))});
try {
  const bytes = readInput(process.argv[1], 'the input', Number(process.argv[2]));
  process.stdout.write(bytes.length + ' ' + require('node:crypto').createHash('sha256').update(bytes).digest('hex'));
} catch (error) {
  process.stderr.write(error.message);
  process.exitCode = 2;
}`;

function readThroughSocket(path: string, chunks: readonly Buffer[], maxBytes: number): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', READER, path, String(maxBytes)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.stdin.on('error', () => undefined);
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
    // Written with pauses between chunks, so the reader meets an empty socket before the end.
    const writeNext = (i: number): void => {
      if (i === chunks.length) {
        child.stdin.end();
        return;
      }
      child.stdin.write(chunks[i]!);
      setTimeout(() => writeNext(i + 1), 50);
    };
    writeNext(0);
  });
}

describe('readInput from a standard input that is a socket', () => {
  const chunks = [randomBytes(1000), randomBytes(70_000), randomBytes(3)];
  const all = Buffer.concat(chunks);
  const expected = `${all.length} ${createHash('sha256').update(all).digest('hex')}`;

  it.each(['-', '/dev/stdin'])('reads every byte for %s, across pauses in the writing', async (path) => {
    const run = await readThroughSocket(path, chunks, 1024 * 1024);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe(expected);
    expect(run.status).toBe(0);
  });

  it('refuses more than the limit, naming it', async () => {
    const run = await readThroughSocket('-', chunks, 2000);
    expect(run.stdout).toBe('');
    expect(run.stderr).toBe('cannot read the input "-": larger than 2000 bytes (the limit for it)');
    expect(run.status).toBe(2);
  });
});
