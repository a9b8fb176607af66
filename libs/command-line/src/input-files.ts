import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { CliError } from './cli-error';

/** Reads an input file; a missing or unreadable file is a usage error (exit 2) naming the flag. */
export function readInput(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw CliError.usage(`cannot read ${what} ${JSON.stringify(path)}: ${code}`);
  }
}

/** Writes an output file (mode 0600: outputs may be credential or sealed blobs). */
export function writeOutput(path: string, data: Uint8Array, what: string): void {
  try {
    writeFileSync(path, data, { mode: 0o600 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unwritable';
    throw CliError.usage(`cannot write ${what} ${JSON.stringify(path)}: ${code}`);
  }
}

export function ensureDirectory(path: string, what: string): void {
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unwritable';
    throw CliError.usage(`cannot create ${what} ${JSON.stringify(path)}: ${code}`);
  }
}

/** Parses a hex option (`--nonce`, `--name`); an empty string is allowed where `allowEmpty`. */
export function parseHexOption(value: string, flag: string, allowEmpty = false): Buffer {
  const text = value.trim().replace(/^0x/i, '');
  if (text === '' && allowEmpty) {
    return Buffer.alloc(0);
  }
  if (text === '' || text.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(text)) {
    throw CliError.usage(`${flag} must be an even number of hex digits`);
  }
  return Buffer.from(text, 'hex');
}
