import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError } from './cli-error';
import { EXIT } from './exit-codes';
import { filesAtPath } from './input-files';

describe('filesAtPath', () => {
  let dir: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'rackseal-files-at-path-'));
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const refusal = (path: string, what: string): { code: number; message: string } => {
    try {
      filesAtPath(path, what);
    } catch (error) {
      if (error instanceof CliError) {
        return { code: error.exitCode, message: error.message };
      }
      throw error;
    }
    throw new Error('filesAtPath did not refuse');
  };

  it('is the file itself for a file', () => {
    const file = join(dir, 'root.pem');
    writeFileSync(file, 'x');
    expect(filesAtPath(file, '--ca')).toEqual([file]);
  });

  it('is the regular files of a directory, sorted, without dotfiles, subdirectories or dangling links', () => {
    for (const name of ['b.pem', 'a.der', '.hidden.pem', 'C.pem']) {
      writeFileSync(join(dir, name), 'x');
    }
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'deeper.pem'), 'x');
    symlinkSync(join(dir, 'absent'), join(dir, 'dangling.pem'));
    expect(filesAtPath(dir, '--ca')).toEqual(['C.pem', 'a.der', 'b.pem'].map((name) => join(dir, name)));
  });

  it('refuses a missing path and an empty directory with exit 2, naming what the path was for', () => {
    expect(refusal(join(dir, 'absent'), '--ca')).toEqual({ code: EXIT.usage, message: `cannot read --ca ${JSON.stringify(join(dir, 'absent'))}: ENOENT` });
    mkdirSync(join(dir, 'empty'));
    writeFileSync(join(dir, 'empty', '.only-a-dotfile'), 'x');
    expect(refusal(join(dir, 'empty'), 'certificate path')).toEqual({ code: EXIT.usage, message: `certificate path ${JSON.stringify(join(dir, 'empty'))} is an empty directory` });
  });
});
