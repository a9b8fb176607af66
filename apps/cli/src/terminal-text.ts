/**
 * Text from the server or the database (names, subjects, CSV cells, error messages) shown on the
 * operator's terminal with control characters escaped, so a crafted value cannot move the cursor,
 * rewrite earlier lines or fake output (ANSI escapes, CR, newlines).
 */
export function safe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
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
