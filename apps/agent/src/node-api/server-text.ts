import { UNPRINTABLE_CLASS } from '@rackseal/ek-trust';

/**
 * Text the server sent (a refusal's code, message and lines), made fit for the agent's terminal and
 * logs. The server is not trusted for its bytes: a hostile or compromised one (or a proxy in front
 * of it) could send ANSI escape sequences that rewrite the operator's screen, CR that hides the
 * start of a line, NUL, C1 controls (U+009B is an 8-bit CSI), or bidirectional overrides that show
 * text in another order than it is stored. Each such character is shown escaped, `\u{1B}`, so the
 * operator sees that something was there (ek-trust's UNPRINTABLE_CLASS: Cc, Cf, U+2028/2029); lone
 * surrogates, which no terminal can show, too. The result is cut at `max` characters, the cut said.
 */
const UNPRINTABLE = new RegExp(`[${UNPRINTABLE_CLASS}]|[\\ud800-\\udfff]`, 'u');

/** A refusal's code (e.g. `attestation.unknown-ek`): the server's are under 64 characters. */
export const MAX_SERVER_CODE = 100;
/** A refusal's message or one line of its explanation. */
export const MAX_SERVER_LINE = 1000;
/** Lines of a refusal's explanation (a policy mismatch names each PCR and event that differ). */
export const MAX_SERVER_LINES = 64;

export function serverText(text: string, max: number): string {
  let out = '';
  let taken = 0;
  for (const character of text) {
    const shown = UNPRINTABLE.test(character) ? `\\u{${character.codePointAt(0)!.toString(16).toUpperCase()}}` : character;
    if (out.length + shown.length > max) {
      return `${out}… (${[...text].length - taken} more characters)`;
    }
    out += shown;
    taken += 1;
  }
  return out;
}

/** An explanation's lines, each made printable, at most MAX_SERVER_LINES (the last saying how many were left out). */
export function serverLines(lines: readonly string[]): string[] {
  const shown = lines.slice(0, MAX_SERVER_LINES).map((line) => serverText(line, MAX_SERVER_LINE));
  return lines.length <= MAX_SERVER_LINES ? shown : [...shown.slice(0, -1), `… ${lines.length - MAX_SERVER_LINES + 1} more lines`];
}
