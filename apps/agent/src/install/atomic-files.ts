import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { InstallError } from './install-errors';

/** One file of an install: its whole content, mode and owner (-1: the agent's, as chown(2)). */
export interface FileToWrite {
  readonly path: string;
  readonly bytes: Buffer;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export interface WrittenFile {
  readonly path: string;
  /** False when the file already had these bytes, mode and owner: it was left alone. */
  readonly changed: boolean;
}

/** A new file that must not exist yet, never through a symbolic link. */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

function ioError(error: unknown, path: string, operation: string): InstallError {
  if (error instanceof InstallError) {
    return error;
  }
  return new InstallError('install.io', `cannot ${operation} ${path}: ${(error as NodeJS.ErrnoException).code ?? 'unknown error'}`, { cause: error });
}

/**
 * Writes the files of one install so that each target holds its old content or its new one, never
 * a mix, and no one but the final owner can read a secret even for an instant:
 *
 *   1. files already holding these bytes, mode and owner are left alone (a re-applied delivery
 *      rewrites nothing: inode and mtime stay);
 *   2. every changed file goes to a temporary file in its own directory (rename(2) is atomic
 *      within one file system), created O_EXCL|O_NOFOLLOW with mode 0600, written, chowned,
 *      chmodded to its mode and fsynced;
 *   3. only when all temporary files are complete are they renamed over their targets, in the
 *      order given (the caller puts the private key last), then each directory is fsynced once.
 *
 * A failure before the renames removes every temporary file and leaves every target as it was; a
 * failure between two renames (the disk vanishing) leaves the earlier ones done, and the next
 * delivery of the same version completes them. Missing directories are created (mode 0755: the
 * files' own modes protect them), as kubeadm does for /var/lib/kubelet/pki.
 */
export async function writeFilesAtomically(files: readonly FileToWrite[]): Promise<WrittenFile[]> {
  const changed: { file: FileToWrite; temporary: string }[] = [];
  const results: WrittenFile[] = [];
  try {
    for (const file of files) {
      const existing = await lstat(file.path).catch(() => undefined);
      if (existing?.isDirectory() === true) {
        // rename(2) would fail only after the files before it were replaced: refused before any.
        throw new InstallError('install.io', `cannot replace ${file.path}: it is a directory`);
      }
      if (await holdsAlready(file)) {
        results.push({ path: file.path, changed: false });
        continue;
      }
      const dir = dirname(file.path);
      await mkdir(dir, { recursive: true, mode: 0o755 }).catch((error: unknown) => {
        throw ioError(error, dir, 'create the directory');
      });
      const temporary = join(dir, `.${basename(file.path)}.rackseal-${randomBytes(6).toString('hex')}.tmp`);
      changed.push({ file, temporary });
      await writeTemporary(temporary, file);
      results.push({ path: file.path, changed: true });
    }
  } catch (error) {
    await Promise.all(changed.map(({ temporary }) => unlink(temporary).catch(() => undefined)));
    throw error;
  }
  const renamed = new Set<string>();
  try {
    for (const { file, temporary } of changed) {
      await rename(temporary, file.path).catch((error: unknown) => {
        throw ioError(error, file.path, 'replace');
      });
      renamed.add(temporary);
    }
    for (const dir of new Set(changed.map(({ file }) => dirname(file.path)))) {
      await syncDirectory(dir);
    }
  } finally {
    await Promise.all(changed.filter(({ temporary }) => !renamed.has(temporary)).map(({ temporary }) => unlink(temporary).catch(() => undefined)));
  }
  return results;
}

async function writeTemporary(temporary: string, file: FileToWrite): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, CREATE_FLAGS, 0o600);
    await handle.chmod(0o600); // the umask may only have removed bits: say exactly what is meant
    await handle.writeFile(file.bytes);
    if (file.uid !== -1 || file.gid !== -1) {
      await handle.chown(file.uid, file.gid);
    }
    await handle.chmod(file.mode); // after chown, which may clear mode bits
    await handle.sync();
  } catch (error) {
    throw ioError(error, file.path, 'write');
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** Whether `file.path` is a regular file (not a link) with exactly these bytes, mode and owner. */
async function holdsAlready(file: FileToWrite): Promise<boolean> {
  let info;
  try {
    info = await lstat(file.path);
  } catch {
    return false;
  }
  const uid = file.uid === -1 ? process.geteuid?.() : file.uid;
  if (!info.isFile() || info.size !== file.bytes.length || (info.mode & 0o7777) !== file.mode || (uid !== undefined && info.uid !== uid) || (file.gid !== -1 && info.gid !== file.gid)) {
    return false;
  }
  let handle: FileHandle | undefined;
  try {
    handle = await open(file.path, READ_FLAGS);
    const current = Buffer.alloc(file.bytes.length + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(current, length, current.length - length, null);
      if (bytesRead === 0 || length + bytesRead > file.bytes.length) {
        length += bytesRead;
        break;
      }
      length += bytesRead;
    }
    const same = length === file.bytes.length && current.subarray(0, length).equals(file.bytes);
    current.fill(0);
    return same;
  } catch {
    return false;
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

/** fsync of the directory: the rename is on disk, not only the file's data. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
    await handle.sync();
  } catch (error) {
    throw ioError(error, dir, 'sync the directory');
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
