/**
 * Characters that are never shown raw to an operator: Unicode Cc (C0 with NUL, DEL, C1 — ANSI escape
 * sequences, line breaks, the 8-bit CSI U+009B), the line and paragraph separators U+2028/2029, and
 * Unicode Cf, the invisible format characters: the bidirectional controls of Unicode TR #9 (ALM,
 * LRM, RLM, LRE…RLO, LRI…PDI) that make a terminal display text in another order than it is stored,
 * and the zero-width ones (U+200B…U+200D, U+2060 word joiner, U+FEFF, U+00AD soft hyphen, tag
 * characters) that make `adm\u200bin` look like `admin`. Certificate names escape them (names.ts);
 * stored labels and names refuse them (libs/vendor-cas, libs/api-tokens, inventory cells).
 */
export const UNPRINTABLE_CLASS = '\\p{Cc}\\p{Cf}\\u2028\\u2029';

const UNPRINTABLE = new RegExp(`[${UNPRINTABLE_CLASS}]`, 'u');

/** The first unprintable character of `text` and its index, or undefined. */
export function findUnprintable(text: string): { readonly character: string; readonly index: number } | undefined {
  const found = UNPRINTABLE.exec(text);
  return found === null ? undefined : { character: found[0], index: found.index };
}
