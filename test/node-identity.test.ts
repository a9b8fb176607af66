/**
 * Issue 12 item 5: @rackseal/node-identity is loaded by the agent at boot as well as by the control
 * plane, so, as built, it loads its own files and SecretBytes' one file, nothing else: not the
 * @rackseal/config index (which loads NestJS), no package from node_modules. That ESLint refuses
 * those imports there is in test/lint-boundaries.test.ts.
 */
import { spawnSync } from 'node:child_process';
import { join, relative } from 'node:path';
import { repoRoot } from './support/repo-root';

const ROOT = repoRoot();

describe('@rackseal/node-identity as built', () => {
  it('loads its own files and libs/config/src/secret-bytes.js, nothing else', () => {
    const entry = join(ROOT, 'dist/libs/node-identity/src/index.js');
    const script =
      `const m = require(${JSON.stringify(entry)});` +
      'const c = m.deriveNodeCredential(Buffer.alloc(32, 1), { registrationId: "r", ekPubHash: "ab".repeat(32), akName: Buffer.alloc(34) });' +
      'process.stdout.write(JSON.stringify({ id: c.credentialId, loaded: Object.keys(require.cache) }));';
    const run = spawnSync(process.execPath, ['-e', script], { cwd: ROOT, encoding: 'utf8' });
    expect([run.status, run.stderr]).toEqual([0, '']);
    const { id, loaded } = JSON.parse(run.stdout) as { id: string; loaded: string[] };
    expect(id).toMatch(/^[0-9a-f]{32}$/);
    const files = loaded.map((path) => relative(ROOT, path));
    expect(files.filter((path) => !path.startsWith('dist/libs/node-identity/'))).toEqual(['dist/libs/config/src/secret-bytes.js']);
    expect(files.filter((path) => path.startsWith('dist/libs/node-identity/')).length).toBeGreaterThan(5);
  });
});
