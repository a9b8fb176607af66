import { execFileSync } from 'node:child_process';

/** The forms a secret could be written in by mistake: raw bytes are searched apart, these as text. */
export function renderings(bytes: Buffer): string[] {
  return [bytes.toString('hex'), bytes.toString('base64'), bytes.toString('base64url')];
}

/** A plain-format pg_dump of the whole database: what a stolen backup holds. */
export function dumpDatabase(url: string): Buffer {
  return execFileSync('pg_dump', ['--dbname', url, '--format', 'plain'], { maxBuffer: 256 * 1024 * 1024 });
}

/**
 * The secrets (of `named`) found in `haystack`, raw or in any rendering: the empty list is the
 * pass. Names, never the bytes, so a failing assertion prints no secret either.
 */
export function secretsFoundIn(haystack: Buffer, named: ReadonlyMap<string, Buffer>): string[] {
  const text = haystack.toString('latin1');
  return [...named].filter(([, secret]) => haystack.includes(secret) || renderings(secret).some((r) => text.includes(r))).map(([name]) => name);
}
