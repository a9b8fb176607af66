import { InvalidArgumentError } from 'commander';

/**
 * A commander argument parser for a whole-number option within [min, max]: a bad value is a usage
 * error (exit 2) naming the option before any request is sent, instead of a server 400.
 */
export function integerOption(flag: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const text = value.trim();
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text)) || Number(text) < min || Number(text) > max) {
      throw new InvalidArgumentError(`${flag} must be a whole number from ${min} to ${max}.`);
    }
    return Number(text);
  };
}
