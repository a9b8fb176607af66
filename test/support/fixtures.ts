import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './repo-root';

/**
 * The path of a public fixture under test/fixtures, e.g. `fixturePath('vendor-cas', 'IFX1.pem')` or
 * `fixturePath('eventlogs')` for the folder. test/fixtures/SOURCES.md says where each file comes from.
 * Every test and bench that reads a fixture goes through here, so the suite needs nothing outside the
 * repository. A name that is not there throws at once, naming the path, rather than later as ENOENT
 * from whichever fs call happened to touch it.
 */
export function fixturePath(...segments: readonly string[]): string {
  const path = join(repoRoot(), 'test', 'fixtures', ...segments);
  if (!existsSync(path)) {
    throw new Error(`no such fixture: ${path} (test/fixtures/SOURCES.md lists them)`);
  }
  return path;
}
