import { CliError } from '@rackseal/command-line/cli-error';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(\d{1,7})([smhd])$/;

/** `--interval 30m`, `--ask-every 1m`, `--timeout 30s`: a duration of s, m, h or d, at least `minMs`. */
export function parseDuration(value: string, flag: string, minMs: number): number {
  const match = DURATION.exec(value.trim());
  const ms = match === null ? Number.NaN : Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  if (!(ms >= minMs)) {
    throw CliError.usage(`${flag} must be a duration of at least ${minMs / 1000}s, e.g. 90s, 30m, 1h, 1d (not ${JSON.stringify(value)})`);
  }
  return ms;
}

/**
 * `--timeout`: one HTTP attempt, connect to the answer's last byte (node-api-client.ts). At least a
 * second; the retries on top of it are the client's (five attempts for enroll).
 */
export function parseTimeout(value: string): number {
  return parseDuration(value, '--timeout', 1000);
}
