import { InvalidArgumentError } from 'commander';

/** Milliseconds per unit of the CLI's durations. */
export const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** A duration as operators type it: `90s`, `30m`, `24h`, `7d`, `2w`. */
export const DURATION = /^(\d{1,9})([smhdw])$/;

/** The duration's milliseconds, undefined when `text` is not one. */
export function parseDurationMs(text: string): number | undefined {
  const match = DURATION.exec(text.trim());
  return match === null ? undefined : Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
}

/** `900` → `15m`, `86400` → `1d`, `90` → `90s`: the largest unit that divides it, for messages and tables. */
export function formatSeconds(seconds: number): string {
  for (const [unit, ms] of Object.entries(UNIT_MS).reverse()) {
    if ((seconds * 1000) % ms === 0) {
      return `${(seconds * 1000) / ms}${unit}`;
    }
  }
  return `${seconds}s`;
}

/**
 * `--interval 15m`: a duration as whole seconds (what PUT /v1/groups/:group/interval takes), or the
 * word `default` (undefined: back to the fleet default). The bounds are the server's, which names
 * them; anything that is not a duration is a usage error naming `flag` before any request is sent.
 */
export function intervalArgument(flag: string): (value: string) => number | 'default' {
  return (value: string) => {
    if (value.trim() === 'default') {
      return 'default';
    }
    const ms = parseDurationMs(value);
    if (ms === undefined || ms === 0) {
      throw new InvalidArgumentError(`${flag} must be a duration (e.g. 90s, 15m, 1h, 1d, 2w) or "default" (the fleet's MACHINE_ATTESTATION_INTERVAL_MS).`);
    }
    return ms / 1000;
  };
}
