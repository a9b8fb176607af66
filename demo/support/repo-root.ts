import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The repository root: test/support in the sources, dist/test/support once built (bench/ runs from dist). */
export function repoRoot(): string {
  let dir = __dirname;
  while (!existsSync(join(dir, 'package.json')) || existsSync(join(dir, 'tsconfig.build.json')) === false) {
    const parent = dirname(dir);
    if (parent === dir) {
      throw new Error(`no rackseal checkout above ${__dirname}`);
    }
    dir = parent;
  }
  return dir;
}
