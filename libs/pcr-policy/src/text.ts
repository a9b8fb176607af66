import { findUnprintable, UNPRINTABLE_CLASS } from '@rackseal/ek-trust';

/**
 * Operator-facing text: labels and machine names are refused when they hold a control or invisible
 * format character (libs/ek-trust's one definition), event text from a log is left out instead.
 */

/** The problem with `text` as a name of 1..max characters, or undefined when it is fine. */
export function nameProblem(text: string, max: number): string | undefined {
  const length = [...text].length;
  if (length === 0 || length > max) {
    return `must be 1–${max} characters, not ${length}`;
  }
  const unprintable = findUnprintable(text);
  if (unprintable !== undefined) {
    const code = unprintable.character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    return `must be printable (U+${code} at index ${unprintable.index})`;
  }
  if (text.trim() !== text) {
    return 'must not start or end with a space';
  }
  return undefined;
}

/** The longest event text shown in a summary; firmware strings are short, a longer one is cut. */
export const MAX_DESCRIPTION_LENGTH = 128;

/**
 * Event data is firmware output nobody signed (a UEFI file path is not covered by the image digest):
 * shown only when printable, and cut to MAX_DESCRIPTION_LENGTH characters.
 */
export function shownText(text: string | undefined): string | undefined {
  if (text === undefined || text.length === 0 || findUnprintable(text) !== undefined) {
    return undefined;
  }
  const chars = [...text];
  return chars.length <= MAX_DESCRIPTION_LENGTH ? text : `${chars.slice(0, MAX_DESCRIPTION_LENGTH - 1).join('')}…`;
}

const UNPRINTABLE_GLOBAL = new RegExp(`[${UNPRINTABLE_CLASS}]`, 'gu');

/** Input echoed in an error message or field path: at most `max` characters, unprintable ones as \uXXXX. */
export function echoed(text: string, max: number): string {
  return [...text].slice(0, max).join('').replace(UNPRINTABLE_GLOBAL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
