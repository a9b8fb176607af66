/**
 * Characters that must never reach an operator's terminal or a log viewer from stored text:
 * C0 controls (NUL, ESC starting ANSI sequences, CR/LF forging lines), DEL, C1 controls (U+009B is a
 * one-byte CSI on some terminals), the line/paragraph separators, and the bidirectional overrides
 * and isolates that reorder what is displayed (Unicode TR #9; "Trojan Source", CVE-2021-42574).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE_FOR_DISPLAY = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/** The first character of `text` that would control a terminal rather than print, as `U+XXXX`; undefined when none. */
export function firstControlCharacter(text: string): string | undefined {
  const match = UNSAFE_FOR_DISPLAY.exec(text);
  return match === null ? undefined : `U+${match[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}
