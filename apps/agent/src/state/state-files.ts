import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StateCorruptError, StateDirError, StateIoError, StateNotEnrolledError, StatePermissionError } from './state-errors';

/**
 * The state dir's file primitives. Everything in the dir is the agent's own: a directory and regular
 * files owned by the agent's user that no group or other user can write (what another user could
 * replace the agent would trust), files written whole or not at all, and read with a size bound.
 */

/** Group- or other-writable. */
const WRITABLE_BY_OTHERS = 0o022;

/**
 * Opens for reading without following a symbolic link (ELOOP instead) and without blocking on a FIFO
 * someone put in place of a file: the fstat that follows then refuses it as not a regular file.
 */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** A new file that must not exist yet, never through a symbolic link. */
const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? 'unknown error';
}

/** An errno from the file system as the state error it stands for. */
function fileSystemError(error: unknown, path: string, operation: string): unknown {
  if (error instanceof StateDirError) {
    return error;
  }
  const code = errnoCode(error);
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return new StatePermissionError(path, `the agent (uid ${process.geteuid?.() ?? '?'}) may not ${operation} it (${code})`);
    case 'ELOOP':
      return new StatePermissionError(path, 'is a symbolic link; the agent keeps only regular files in its state dir');
    case 'ENOTDIR':
      return new StatePermissionError(path, 'a component of the path is not a directory');
    default:
      return new StateIoError(path, operation, code);
  }
}

/** Owned by the agent's user and not writable by anyone else, and of the expected type (never a symbolic link). */
function checkOwnership(path: string, info: Stats, kind: 'directory' | 'file'): void {
  if (info.isSymbolicLink()) {
    throw new StatePermissionError(path, kind === 'directory' ? 'is a symbolic link; the state dir must be a real directory (give its real path)' : 'is a symbolic link; the agent keeps only regular files in its state dir');
  }
  if (kind === 'directory' ? !info.isDirectory() : !info.isFile()) {
    throw new StatePermissionError(path, kind === 'directory' ? 'is not a directory' : 'is not a regular file');
  }
  const euid = process.geteuid?.();
  if (euid !== undefined && info.uid !== euid) {
    throw new StatePermissionError(path, `is owned by uid ${info.uid}, not by the agent's uid ${euid}`);
  }
  if ((info.mode & WRITABLE_BY_OTHERS) !== 0) {
    const mode = (info.mode & 0o7777).toString(8).padStart(4, '0');
    throw new StatePermissionError(path, `is writable by group or others (mode ${mode}); the agent trusts only what it alone can write (chmod go-w)`);
  }
}

/**
 * Makes sure `path` is a directory the agent may trust. When it does not exist: created with mode
 * 0700 (and missing parents too) if `create`, else StateNotEnrolledError. An existing directory is
 * taken as it is if the agent's user owns it and nobody else can write it. A symbolic link is
 * refused, even to such a directory: whoever can replace the link (its parent's owner, not the
 * dir's) could point the agent at a dir of their making between two runs, and the owner and mode
 * checked would be the target's, not the link's (docs/decisions.md, "The agent after the intruder
 * pass"). Only the last component is checked; parents are the system's (e.g. /var/lib).
 */
export async function ensureStateDirectory(path: string, create: boolean): Promise<void> {
  let info: Stats;
  try {
    info = await lstat(path);
  } catch (error) {
    if (errnoCode(error) !== 'ENOENT') {
      throw fileSystemError(error, path, 'read');
    }
    if (!create) {
      throw new StateNotEnrolledError(path);
    }
    try {
      await mkdir(path, { recursive: true, mode: 0o700 });
      info = await lstat(path);
    } catch (mkdirError) {
      throw fileSystemError(mkdirError, path, 'create');
    }
  }
  checkOwnership(path, info, 'directory');
}

/** fsync of the directory: the rename that replaced a file is on disk, not only the file's data. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `dir/file` with `bytes`, whole or not at all: a temporary file in the same directory
 * (O_EXCL, mode 0600), written and fsynced, renamed over the target (rename(2) is atomic within one
 * file system), then the directory fsynced. A crash or a full disk leaves the old file or the new
 * one, never a mix; a failed write removes its temporary file.
 */
export async function writeStateFile(dir: string, file: string, bytes: Buffer): Promise<void> {
  const target = join(dir, file);
  const temporary = join(dir, `.${file}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, CREATE_FLAGS, 0o600);
    await handle.chmod(0o600); // the umask may only have removed bits, but say exactly what is meant
    await handle.writeFile(bytes);
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(temporary, target);
    await syncDirectory(dir);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw fileSystemError(error, target, 'write');
  }
}

/**
 * Reads `dir/file`, at most `maxBytes`: a missing file is StateNotEnrolledError, a symbolic link, a
 * non-regular file or one another user owns or can write is StatePermissionError, a larger one is
 * StateCorruptError (nothing the agent writes is that large). Reads until end of file rather than
 * trusting the size fstat reports.
 */
export async function readStateFile(dir: string, file: string, maxBytes: number): Promise<Buffer> {
  const path = join(dir, file);
  let handle: FileHandle;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (error) {
    throw errnoCode(error) === 'ENOENT' ? new StateNotEnrolledError(path) : fileSystemError(error, path, 'read');
  }
  try {
    checkOwnership(path, await handle.stat(), 'file');
    const buffer = Buffer.alloc(maxBytes + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) {
        return Buffer.from(buffer.subarray(0, length));
      }
      length += bytesRead;
      if (length > maxBytes) {
        throw new StateCorruptError(path, `larger than ${maxBytes} bytes, more than the agent ever writes there`);
      }
    }
  } catch (error) {
    throw fileSystemError(error, path, 'read');
  } finally {
    await handle.close();
  }
}
