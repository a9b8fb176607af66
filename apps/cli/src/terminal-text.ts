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

/**
 * A command's `--json` output, one JSON text: what a machine measured or an operator's file held
 * (runtime-policy paths, names, audit details) reaches the terminal as JSON. JSON.stringify escapes
 * C0 controls in strings (RFC 8259 section 7) but writes the rest of UNPRINTABLE_CLASS raw: DEL, C1
 * (U+009B is a CSI on many terminals), the bidi controls of Unicode UAX #9, zero-width characters,
 * U+2028/2029. Those are written as `\uXXXX` too, which RFC 8259 section 7 allows for any character:
 * the text is still JSON and parses to the same value, shown in stored order. Outside strings
 * JSON.stringify writes printable ASCII and, indented, line feeds (C0, left alone), so every match
 * is inside a string; lone surrogates it escapes itself (ECMA-262, well-formed JSON.stringify).
 */
const RAW_IN_JSON = new RegExp(`(?![\\u0000-\\u001f])[${UNPRINTABLE_CLASS}]`, 'gu');

export function terminalJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(RAW_IN_JSON, (c) =>
    Array.from({ length: c.length }, (_, i) => `\\u${c.charCodeAt(i).toString(16).padStart(4, '0')}`).join(''),
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
