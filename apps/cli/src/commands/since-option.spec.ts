import { InvalidArgumentError } from 'commander';
import { instantArgument } from './since-option';

describe('--not-attested-since (instantArgument)', () => {
  const now = new Date('2026-03-08T12:00:00.000Z');
  const parse = instantArgument('--not-attested-since', () => now);

  it.each([
    ['90s', '2026-03-08T11:58:30.000Z'],
    ['30m', '2026-03-08T11:30:00.000Z'],
    ['24h', '2026-03-07T12:00:00.000Z'],
    ['7d', '2026-03-01T12:00:00.000Z'],
    ['2w', '2026-02-22T12:00:00.000Z'],
    ['0h', '2026-03-08T12:00:00.000Z'],
    ['2026-03-01T12:00:00+02:00', '2026-03-01T10:00:00.000Z'],
  ])('%s is %s', (text, iso) => {
    expect(parse(text)).toBe(iso);
  });

  it.each(['24', 'h', '-1h', '1.5h', '1y', '24 h', '2026-03-01', '2026-03-01T10:00:00', 'yesterday', ''])('refuses %j naming the option', (text) => {
    expect(() => parse(text)).toThrow(InvalidArgumentError);
    expect(() => parse(text)).toThrow(/^--not-attested-since must be a date-time with its offset/);
  });
});
