/**
 * The agent's installs against links planted where it writes (issue 14, intruder pass): a symbolic
 * link or a hard link at a target's path, pointing at a file the agent must never touch (an
 * /etc/shadow stand-in), is replaced by the new file; the file it pointed at keeps its bytes and
 * mode, and a link to a file already holding the delivered bytes is not taken as the install done.
 */
import { link, lstat, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeFilesAtomically } from '../apps/agent/src/install/atomic-files';

describe('installs and planted links', () => {
  let dir: string;
  const KEY = Buffer.from('-----BEGIN PRIVATE KEY-----\nnot really\n-----END PRIVATE KEY-----\n');
  const SHADOW = Buffer.from('root:$6$salt$hash:19000:0:99999:7:::\n');

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-links-'));
    await writeFile(join(dir, 'shadow'), SHADOW, { mode: 0o640 });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it.each([
    ['a symbolic link', (target: string, path: string) => symlink(target, path)],
    ['a hard link', (target: string, path: string) => link(target, path)],
  ])('%s at the target path is replaced, never written through', async (_, plant) => {
    const target = join(dir, 'tls', 'key.pem');
    await writeFilesAtomically([{ path: join(dir, 'tls', 'placeholder'), bytes: Buffer.from('x'), mode: 0o644, uid: -1, gid: -1 }]);
    await plant(join(dir, 'shadow'), target);
    expect(await writeFilesAtomically([{ path: target, bytes: KEY, mode: 0o600, uid: -1, gid: -1 }])).toEqual([{ path: target, changed: true }]);
    expect(await readFile(join(dir, 'shadow'))).toEqual(SHADOW);
    expect((await lstat(join(dir, 'shadow'))).mode & 0o7777).toBe(0o640);
    const written = await lstat(target);
    expect([written.isFile(), written.nlink, written.mode & 0o7777]).toEqual([true, 1, 0o600]);
    expect(await readFile(target)).toEqual(KEY);
    expect((await readdir(join(dir, 'tls'))).sort()).toEqual(['key.pem', 'placeholder']);
  });

  it('a symbolic link to a file that already holds the delivered bytes is not the install done: it is replaced by a file of its own', async () => {
    await writeFile(join(dir, 'same'), KEY, { mode: 0o600 });
    const target = join(dir, 'key.pem');
    await symlink(join(dir, 'same'), target);
    expect(await writeFilesAtomically([{ path: target, bytes: KEY, mode: 0o600, uid: -1, gid: -1 }])).toEqual([{ path: target, changed: true }]);
    expect((await lstat(target)).isSymbolicLink()).toBe(false);
  });
});
