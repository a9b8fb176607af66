/**
 * What the BUILT startup snapshot (dist/apps/agent/unlock.blob, `npm run build`) carries from its
 * build-time warm-up (apps/agent/src/unlock-snapshot-warm-tpm.ts), which ran with node:crypto's
 * randomBytes a counter hash and unwrapped a throwaway disk key (32 bytes 0x5a,
 * bench/record-unlock-warm.ts): a process deserialised from it must draw fresh randomness from every
 * node:crypto source — two starts differ, and neither draws the warm-up's counter stream — and the
 * blob must hold the throwaway key in no rendering. A probe is preloaded (`--require`) into the
 * deserialised process, which then runs the agent's `--version`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { buildSync } from 'esbuild';
import { join } from 'node:path';
import { deterministicRandomBytes, WARM_RANDOM_LABEL } from '../apps/agent/src/unlock-snapshot-warm-tpm';
import { repoRoot } from './support/repo-root';
import { secretsFoundIn } from './support/secret-search';

const BLOB = (): string => join(repoRoot(), 'dist/apps/agent/unlock.blob');

const PROBE = `
const crypto = require('node:crypto');
const draws = {
  randomBytesIsNode: Function.prototype.toString.call(crypto.randomBytes).startsWith('function randomBytes('),
  randomFillSyncIsNode: Function.prototype.toString.call(crypto.randomFillSync).startsWith('function randomFillSync('),
  randomBytes: crypto.randomBytes(32).toString('hex'),
  randomFillSync: crypto.randomFillSync(Buffer.alloc(32)).toString('hex'),
  getRandomValues: Buffer.from(crypto.webcrypto.getRandomValues(new Uint8Array(32))).toString('hex'),
  randomUUID: crypto.randomUUID(),
  ecdh: crypto.createECDH('prime256v1').generateKeys('hex'),
  regExpInput: RegExp.input,
};
crypto.randomBytes(32, (error, bytes) => {
  draws.randomBytesCallback = bytes.toString('hex');
  process.stderr.write('PROBE ' + JSON.stringify(draws) + '\\n');
});
`;

describe('the built startup snapshot (dist/apps/agent/unlock.blob)', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rackseal-blob-probe-'));
    writeFileSync(join(dir, 'probe.js'), PROBE);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const probe = (): Record<string, unknown> => {
    const run = spawnSync(process.execPath, ['--snapshot-blob', BLOB(), '--require', join(dir, 'probe.js'), '--', '--version'], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
    expect(run.status).toBe(0);
    const line = run.stderr.split('\n').find((l) => l.startsWith('PROBE '));
    expect(line).toBeDefined();
    return JSON.parse(line!.slice('PROBE '.length)) as Record<string, unknown>;
  };

  it("draws fresh randomness in every deserialised process, none of it the warm-up's counter stream", () => {
    const [first, second] = [probe(), probe()];
    expect([first.randomBytesIsNode, first.randomFillSyncIsNode]).toEqual([true, true]);
    for (const source of ['randomBytes', 'randomBytesCallback', 'randomFillSync', 'getRandomValues', 'randomUUID', 'ecdh']) {
      expect({ source, same: first[source] === second[source] }).toEqual({ source, same: false });
    }
    // The counter's first 4,096 blocks (the warm-up drew a few hundred bytes) hold neither start's draw.
    const counter = deterministicRandomBytes(WARM_RANDOM_LABEL)(32 * 4096).toString('hex');
    expect([counter.includes(first.randomBytes as string), counter.includes(second.randomBytes as string)]).toEqual([false, false]);
    // RegExp's legacy statics carry no build-time subject (the warm-up's payload parse matched the key's base64).
    expect(first.regExpInput).toBe('');
  });

  it("holds the warm-up's throwaway disk key in no rendering", () => {
    const key = Buffer.alloc(32, 0x5a);
    expect(secretsFoundIn(readFileSync(BLOB()), new Map([['the warm-up disk key', key]]))).toEqual([]);
  });

  it('is not written when the warm-up never settles with the counter in place (the build fails)', () => {
    // A build script that starts the deterministic stream and awaits a promise nothing resolves:
    // `--build-snapshot` takes the heap once the event loop is empty, the stream still installed.
    const script = join(dir, 'hang.js');
    const blob = join(dir, 'hang.blob');
    // One script, as scripts/build-unlock-snapshot.mjs gives `--build-snapshot` (its require loads no file).
    buildSync({
      stdin: {
        contents: `const warm = require('./unlock-snapshot-warm-tpm.js');
const crypto = require('node:crypto');
warm.withDeterministicRandom(() => new Promise(() => {}));
require('node:v8').startupSnapshot.setDeserializeMainFunction(() => process.stdout.write(crypto.randomBytes(32).toString('hex')));`,
        resolveDir: join(repoRoot(), 'dist/apps/agent/src'),
      },
      outfile: script,
      bundle: true,
      platform: 'node',
      format: 'iife',
      logLevel: 'silent',
    });
    const build = spawnSync(process.execPath, ['--snapshot-blob', blob, '--build-snapshot', script], { env: { PATH: process.env.PATH }, encoding: 'utf8' });
    const drawn = existsSync(blob) ? spawnSync(process.execPath, ['--snapshot-blob', blob], { encoding: 'utf8' }).stdout : '';
    expect({ drawnIsCounter: drawn === deterministicRandomBytes(WARM_RANDOM_LABEL)(32).toString('hex'), blobWritten: existsSync(blob) }).toEqual({ drawnIsCounter: false, blobWritten: false });
    expect(build.status).toBe(1);
    expect(build.stderr).toContain("taken with the warm-up's deterministic randomBytes in place");
  });
});
