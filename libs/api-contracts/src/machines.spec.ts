import { parseInstant } from './machines';

describe('parseInstant (GET /v1/machines?notAttestedSince=)', () => {
  it.each([
    ['2026-03-01T10:00:00Z', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01T10:00Z', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01t10:00:00.123z', '2026-03-01T10:00:00.123Z'],
    ['2026-03-01T12:00:00+02:00', '2026-03-01T10:00:00.000Z'],
    ['2026-03-01T05:30:00.5-04:30', '2026-03-01T10:00:00.500Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
  ])('reads %s as %s', (text, iso) => {
    expect(parseInstant(text)?.toISOString()).toBe(iso);
  });

  it.each([
    ['no offset (a server-local time)', '2026-03-01T10:00:00'],
    ['a date only', '2026-03-01'],
    ['a day that does not exist', '2026-02-30T00:00:00Z'],
    ['February 29 of a common year', '2026-02-29T00:00:00Z'],
    ['month 13', '2026-13-01T00:00:00Z'],
    ['hour 24', '2026-03-01T24:00:00Z'],
    ['second 60', '2026-03-01T10:00:60Z'],
    ['an offset of 24 hours', '2026-03-01T10:00:00+24:00'],
    ['year 0', '0000-01-01T00:00:00Z'],
    ['epoch milliseconds', '1772359200000'],
    ['words', 'yesterday'],
    ['surrounding space', ' 2026-03-01T10:00:00Z'],
    ['a week date', '2026-W09-7T10:00:00Z'],
  ])('refuses %s', (_, text) => {
    expect(parseInstant(text)).toBeUndefined();
  });
});
