/**
 * deploy/systemd's units of the two server processes (docs/guide/install.md): `systemd-analyze verify`
 * of an instance of each (node and the entry point replaced by stubs that exist), and the directives
 * the guide relies on — the heap bound below the memory limit, the worker's stop timeout above its
 * shutdown grace, a configuration error (exit 78) not restarted in a loop, a non-root user.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONFIG_VARIABLES } from '@rackseal/config';
import { EXIT_CONFIG } from '@rackseal/runtime';
import { repoRoot } from './support/repo-root';

const SYSTEMD = join(repoRoot(), 'deploy', 'systemd');
const UNITS = { 'rackseal-control-plane@.service': 'control-plane', 'rackseal-worker@.service': 'worker' } as const;
const unitLines = (name: string): string[] => readFileSync(join(SYSTEMD, name), 'utf8').split('\n');
const directive = (lines: string[], key: string): string[] =>
  lines.filter((l) => l.startsWith(`${key}=`)).map((l) => l.slice(key.length + 1));

describe('deploy/systemd units of the control plane and the worker', () => {
  let dir: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rackseal-server-units-'));
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('systemd-analyze verify finds nothing to say about an instance of each', () => {
    const node = join(dir, 'node');
    const main = join(dir, 'main.js');
    writeFileSync(node, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    writeFileSync(main, '');
    const instances = Object.keys(UNITS).map((name) => {
      const instance = join(dir, name.replace('@.service', name.includes('control-plane') ? '@8080.service' : '@1.service'));
      const text = readFileSync(join(SYSTEMD, name), 'utf8')
        .replaceAll('/usr/bin/node ', `${node} `)
        .replace(/\/usr\/lib\/node_modules\/rackseal\/dist\/apps\/[a-z-]+\/src\/main\.js/, main);
      writeFileSync(instance, text);
      return instance;
    });
    const verify = spawnSync('systemd-analyze', ['verify', '--man=no', ...instances], { encoding: 'utf8' });
    expect([verify.status, verify.stderr, verify.stdout]).toEqual([0, '', '']);
  });

  it('run the built entry point as a non-root user with a heap bound under the memory limit', () => {
    for (const [name, app] of Object.entries(UNITS)) {
      const lines = unitLines(name);
      const [execStart] = directive(lines, 'ExecStart');
      const match = /^\/usr\/bin\/node --max-old-space-size=(\d+) \/usr\/lib\/node_modules\/rackseal\/(dist\/apps\/([a-z-]+)\/src\/main\.js)$/.exec(execStart ?? '');
      expect({ name, app: match?.[3] }).toEqual({ name, app });
      const memoryMaxMb = Number(/^(\d+)M$/.exec(directive(lines, 'MemoryMax')[0] ?? '')?.[1]);
      expect({ name, fits: Number(match?.[1]) <= memoryMaxMb * 0.75 }).toEqual({ name, fits: true });
      expect(directive(lines, 'User')).toEqual(['rackseal']);
      expect(directive(lines, 'EnvironmentFile')).toEqual(['/etc/rackseal/rackseal.env']);
      expect(directive(lines, 'RestartPreventExitStatus')).toEqual([String(EXIT_CONFIG)]);
    }
    expect(directive(unitLines('rackseal-control-plane@.service'), 'Environment')).toContain('PORT=%i');
  });

  it("give the worker longer to stop than its shutdown grace and the process's own 5 s margin", () => {
    const stopSeconds = Number(/^(\d+)s$/.exec(directive(unitLines('rackseal-worker@.service'), 'TimeoutStopSec')[0] ?? '')?.[1]);
    const graceMs = CONFIG_VARIABLES.workerShutdownGraceMs.parse(undefined);
    expect(stopSeconds * 1000).toBeGreaterThan(graceMs + 5000);
  });
});
