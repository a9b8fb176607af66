import { parseInstant } from '@rackseal/api-contracts';
import { InvalidArgumentError } from 'commander';

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** A duration back from now: `90s`, `30m`, `24h`, `7d`, `2w`. */
const DURATION = /^(\d{1,9})([smhdw])$/;

/**
 * An instant given as an RFC 3339 date-time (`2026-03-01T10:00:00Z`) or as a duration back from now
 * (`24h`: 24 hours ago), for `--not-attested-since`; what the API takes is the instant (ISO 8601).
 * Anything else is a usage error naming `flag` before any request is sent.
 */
export function instantArgument(flag: string, now: () => Date = () => new Date()): (value: string) => string {
  return (value: string) => {
    const trimmed = value.trim();
    const duration = DURATION.exec(trimmed);
    if (duration !== null) {
      return new Date(now().getTime() - Number(duration[1]) * UNIT_MS[duration[2] as keyof typeof UNIT_MS]).toISOString();
    }
    const at = parseInstant(trimmed);
    if (at === undefined) {
      throw new InvalidArgumentError(`${flag} must be a date-time with its offset (e.g. 2026-03-01T10:00:00Z) or a duration back from now (e.g. 90s, 30m, 24h, 7d, 2w).`);
    }
    return at.toISOString();
  };
}
