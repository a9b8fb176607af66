/**
 * Characters that are never shown raw to an operator: Unicode Cc (C0 with NUL, DEL, C1 — ANSI escape
 * sequences, line breaks, the 8-bit CSI U+009B), the line and paragraph separators U+2028/2029, and
 * the bidirectional controls of Unicode TR #9 (ALM, LRM, RLM, LRE…RLO, LRI…PDI) that make a terminal
 * display text in another order than it is stored. Certificate names escape them (names.ts); stored
 * labels refuse them (libs/vendor-cas).
 */
export const UNPRINTABLE_CLASS = '\\p{Cc}\\u2028\\u2029\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069';

const UNPRINTABLE = new RegExp(`[${UNPRINTABLE_CLASS}]`, 'u');

/** The first unprintable character of `text` and its index, or undefined. */
export function findUnprintable(text: string): { readonly character: string; readonly index: number } | undefined {
  const found = UNPRINTABLE.exec(text);
  return found === null ? undefined : { character: found[0], index: found.index };
}
