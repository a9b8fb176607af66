import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The package version, read from package.json beside dist/ so the CLI and the agent never disagree. */
export function packageVersion(): string {
  for (const up of ['../../../..', '../../..']) {
    try {
      const pkg = JSON.parse(readFileSync(join(__dirname, up, 'package.json'), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'rackseal' && typeof pkg.version === 'string') {
        return pkg.version;
      }
    } catch {
      // try the next candidate: dist/apps/x/src and apps/x/src sit at different depths
    }
  }
  return '0.0.0';
}
