import { epochMicrosOf, recordedAtText } from './audit-timestamp';

describe('recordedAtText', () => {
  it('renders a whole-millisecond value exactly as Date.toISOString() does (what existing records were hashed over)', () => {
    for (const iso of ['2026-12-02T13:01:08.123Z', '1970-01-01T00:00:00.000Z', '1969-12-31T23:59:59.999Z', '2000-02-29T23:59:59.001Z']) {
      const date = new Date(iso);
      expect(recordedAtText(epochMicrosOf(date))).toBe(date.toISOString());
      expect(recordedAtText(String(epochMicrosOf(date)))).toBe(iso);
    }
  });

  it('renders every sub-millisecond digit, so one microsecond changes the text', () => {
    expect(recordedAtText('1796216468123000')).toBe('2026-12-02T13:01:08.123Z');
    expect(recordedAtText('1796216468123001')).toBe('2026-12-02T13:01:08.123001Z');
    expect(recordedAtText('1796216468122999')).toBe('2026-12-02T13:01:08.122999Z');
    expect(recordedAtText('1796216468123010')).toBe('2026-12-02T13:01:08.123010Z');
    // Before 1970 the division floors: -1 µs is the last microsecond of 1969.
    expect(recordedAtText('-1')).toBe('1969-12-31T23:59:59.999999Z');
    expect(recordedAtText(-1001n)).toBe('1969-12-31T23:59:59.998999Z');
  });

  it('is one-to-one over a range around a millisecond boundary', () => {
    const texts = new Set<string>();
    for (let us = 1796216468122990n; us <= 1796216468123010n; us += 1n) {
      texts.add(recordedAtText(us)!);
    }
    expect(texts.size).toBe(21);
  });

  it('has no text for values no writer stores: NULL (±infinity), non-integers, beyond a Date', () => {
    expect(recordedAtText(null)).toBeUndefined();
    expect(recordedAtText('Infinity')).toBeUndefined();
    expect(recordedAtText('1.5')).toBeUndefined();
    expect(recordedAtText('')).toBeUndefined();
    // 294276 AD is valid in PostgreSQL, beyond the ±8.64e15 ms of a JS Date.
    expect(recordedAtText('9224318015999999999')).toBeUndefined();
    expect(recordedAtText(8_640_000_000_000_000_000n)).toBe('+275760-09-13T00:00:00.000Z');
  });

  it('refuses an invalid Date on the write side', () => {
    expect(() => epochMicrosOf(new Date(Number.NaN))).toThrow(RangeError);
  });
});
