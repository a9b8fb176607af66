import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_SEQUENCE_CURSOR, MAX_TEXT_CURSOR_LENGTH, MIN_PAGE_SIZE, nextPageAfter, parseWholeNumber } from '@rackseal/api-contracts';
import { InvalidArgumentError, Option } from 'commander';

/**
 * `--limit` and `--after` of the list commands, from the API's paging contract (@rackseal/api-contracts):
 * a bad value is a usage error (exit 2) naming the option before any request is sent, instead of a
 * server 400.
 */

/** `--limit <n>`: at most this many `items` per page. */
export function pageSizeOption(items: string): Option {
  return new Option('--limit <n>', `at most this many ${items} (${MIN_PAGE_SIZE}-${MAX_PAGE_SIZE}, default ${DEFAULT_PAGE_SIZE})`).argParser(wholeNumber('--limit', MIN_PAGE_SIZE, MAX_PAGE_SIZE));
}

/** `--after <id>`: a numeric cursor (an audit record id, the order records were appended in). */
export function idCursorOption(description: string): Option {
  return new Option('--after <id>', description).argParser(wholeNumber('--after', 0, MAX_SEQUENCE_CURSOR));
}

/** A whole number from `min` to `max` for an option or argument; anything else is a usage error naming `flag`. */
export function wholeNumberArgument(flag: string, min: number, max = MAX_SEQUENCE_CURSOR): (value: string) => number {
  return wholeNumber(flag, min, max);
}

/** `--after <key>`: a text cursor (a machine serial). */
export function textCursorOption(key: string, description: string): Option {
  return new Option(`--after <${key}>`, description).argParser((value: string) => {
    if (value.length > MAX_TEXT_CURSOR_LENGTH) {
      throw new InvalidArgumentError(`--after must be at most ${MAX_TEXT_CURSOR_LENGTH} characters.`);
    }
    return value;
  });
}

/** The page size a request asks for: the option, or the API's default. */
export function pageSize(limit: number | undefined): number {
  return limit ?? DEFAULT_PAGE_SIZE;
}

/** `; more: --after X` after a full page (X as `shown`), nothing after the last one. */
export function nextPageHint<T>(page: readonly T[], limit: number, shown: (last: T) => string): string {
  const after = nextPageAfter(page, limit, shown);
  return after === undefined ? '' : `; more: --after ${after}`;
}

function wholeNumber(flag: string, min: number, max: number): (value: string) => number {
  return (value: string) => {
    const parsed = parseWholeNumber(value, min, max);
    if (parsed === undefined) {
      throw new InvalidArgumentError(`${flag} must be a whole number from ${min} to ${max}.`);
    }
    return parsed;
  };
}
