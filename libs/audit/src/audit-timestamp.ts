/**
 * `recorded_at` as the audit hash covers it. PostgreSQL's timestamptz holds microseconds since the
 * epoch, a JS Date only milliseconds, so the hash is computed over text rendered from the exact
 * stored microseconds (read as a number in SQL, never through a Date, see RECORDED_AT_MICROS_SQL):
 * - a whole-millisecond value renders as `Date.toISOString()` does (`2026-12-02T13:01:08.123Z`), which is
 *   what every record written so far was hashed over, so existing chains keep verifying;
 * - any other value renders with all six fractional digits (`2026-12-02T13:01:08.123001Z`).
 * The rendering is one-to-one, so a change of even one microsecond changes the hashed text.
 */

/** Epoch microseconds of `recorded_at` as exact decimal text, NULL for ±infinity (no writer stores those). */
export const RECORDED_AT_MICROS_SQL =
  `CASE WHEN isfinite(recorded_at) THEN (extract(epoch FROM recorded_at) * 1000000)::numeric(30, 0)::text END`;

/** The largest |milliseconds| a JS Date holds (ECMA-262 §21.4.1.22 TimeClip): ±100,000,000 days. */
const MAX_DATE_MS = 8_640_000_000_000_000n;

/** Microseconds since 1970-01-01T00:00:00Z of a Date (whole milliseconds, so a multiple of 1000). */
export function epochMicrosOf(date: Date): bigint {
  const ms = date.getTime();
  if (!Number.isFinite(ms)) {
    throw new RangeError('recorded_at must be a valid date');
  }
  return BigInt(ms) * 1000n;
}

/**
 * The hashed text of a stored `recorded_at` (see above), or undefined when the stored value is not
 * one a writer can produce: NULL (±infinity), not an integer, or outside a JS Date's range.
 */
export function recordedAtText(epochMicros: bigint | string | null): string | undefined {
  let micros: bigint;
  if (typeof epochMicros === 'bigint') {
    micros = epochMicros;
  } else if (typeof epochMicros === 'string' && /^-?\d{1,30}$/.test(epochMicros)) {
    micros = BigInt(epochMicros);
  } else {
    return undefined;
  }
  // Floor division: -1 µs is 1969-12-31T23:59:59.999999Z, in millisecond -1 with 999 µs left over.
  let ms = micros / 1000n;
  if (ms * 1000n > micros) {
    ms -= 1n;
  }
  const subMillisecond = micros - ms * 1000n;
  if (ms > MAX_DATE_MS || ms < -MAX_DATE_MS) {
    return undefined;
  }
  const iso = new Date(Number(ms)).toISOString();
  return subMillisecond === 0n ? iso : `${iso.slice(0, -1)}${subMillisecond.toString().padStart(3, '0')}Z`;
}
