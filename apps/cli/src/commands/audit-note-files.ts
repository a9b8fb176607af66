import { randomBytes } from 'node:crypto';
import { closeSync, fchmodSync, fsyncSync, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { CliError, readInput } from '@rackseal/command-line';
import { safe } from '../terminal-text';

/**
 * The operator's saved checkpoint on disk (`audit checkpoint --save FILE`, `audit verify --since
 * FILE`): a C2SP signed note, kept outside the database so a rewrite of the database cannot reach it.
 */

/**
 * Reads a saved checkpoint note: a missing, unreadable, directory or oversized file, or one that is
 * not a signed checkpoint note, is a usage error (exit 2) naming the flag and the file. Only the form
 * is checked here; whether a trusted key signed it is the caller's question.
 */
export async function readSavedCheckpoint(path: string, flag: string): Promise<string> {
  const { MAX_NOTE_BYTES, parseSignedNote, parseCheckpoint } = await import('@rackseal/audit');
  const what = `${flag} ${JSON.stringify(path)}`;
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory() === true) {
    throw CliError.usage(`${what} is a directory, not a saved checkpoint`);
  }
  const bytes = readInput(path, flag, MAX_NOTE_BYTES);
  try {
    parseCheckpoint(parseSignedNote(bytes).text);
  } catch (error) {
    throw CliError.usage(`${what} is not a signed checkpoint (what rackseal audit checkpoint --save writes): ${safe((error as Error).message)}`);
  }
  return bytes.toString('utf8');
}

/**
 * Writes the note whole or not at all: a temporary file in the same directory, flushed, then renamed
 * over `path` (rename(2) replaces atomically within one file system), so a crash or a full disk never
 * leaves a half-written checkpoint where the old one was. Mode 0644: a checkpoint is public.
 */
export function writeNoteAtomically(path: string, note: string, flag: string): void {
  const temporary = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(temporary, 'wx', 0o644);
    fchmodSync(fd, 0o644); // whatever the umask: the note is public, and readable by whoever audits
    writeSync(fd, Buffer.from(note, 'utf8'));
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(temporary, path);
  } catch (error) {
    if (fd !== undefined) {
      closeSync(fd);
    }
    try {
      unlinkSync(temporary);
    } catch {
      // never created, or already renamed
    }
    throw CliError.usage(`cannot write ${flag} ${JSON.stringify(path)}: ${(error as NodeJS.ErrnoException).code ?? 'unwritable'}`);
  }
}
