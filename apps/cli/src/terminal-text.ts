import { UNPRINTABLE_CLASS } from '@rackseal/ek-trust';

/**
 * Text from the server or the database (names, subjects, CSV cells, error messages) shown on the
 * operator's terminal with control characters escaped, so a crafted value cannot move the cursor,
 * rewrite earlier lines or fake output (ANSI escapes, CR, newlines): C0 and C1 as `\x1b`. Format
 * characters too (ek-trust's UNPRINTABLE_CLASS, as the agent shows the server's text): a bidi
 * override (U+202E) in an imported CA's subject or an echoed reference would show the text in
 * another order than it is stored (Unicode UAX #9), a zero-width character would hide a difference;
 * they are shown as `\u{202E}`. Lone surrogates, which no terminal shows, likewise.
 */
// eslint-disable-next-line no-control-regex
const C0_C1 = /[\u0000-\u001f\u007f-\u009f]/;
const UNPRINTABLE = new RegExp(`[${UNPRINTABLE_CLASS}]|[\\ud800-\\udfff]`, 'gu');

export function safe(text: string): string {
  return text.replace(UNPRINTABLE, (c) =>
    C0_C1.test(c) ? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}` : `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`,
  );
}

/** Rows under a header, columns padded to their widest cell; the last column is not padded. Nothing for no rows. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) {
    return '';
  }
  const cells = [header, ...rows].map((row) => row.map(safe));
  const widths = header.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}
