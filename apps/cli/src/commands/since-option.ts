import { parseInstant } from '@rackseal/api-contracts';
import { InvalidArgumentError } from 'commander';
import { parseDurationMs } from './duration-option';

/**
 * An instant given as an RFC 3339 date-time (`2026-03-01T10:00:00Z`) or as a duration back from now
 * (`24h`: 24 hours ago), for `--not-attested-since`; what the API takes is the instant (ISO 8601).
 * Anything else is a usage error naming `flag` before any request is sent.
 */
export function instantArgument(flag: string, now: () => Date = () => new Date()): (value: string) => string {
  return (value: string) => {
    const trimmed = value.trim();
    const durationMs = parseDurationMs(trimmed);
    if (durationMs !== undefined) {
      return new Date(now().getTime() - durationMs).toISOString();
    }
    const at = parseInstant(trimmed);
    if (at === undefined) {
      throw new InvalidArgumentError(`${flag} must be a date-time with its offset (e.g. 2026-03-01T10:00:00Z) or a duration back from now (e.g. 90s, 30m, 24h, 7d, 2w).`);
    }
    return at.toISOString();
  };
}
