import { TOKEN_NAME_MAX_LENGTH } from '@rackseal/api-contracts';
import { findUnprintable } from '@rackseal/ek-trust';

// The limit is part of the operator API (POST /v1/tokens): declared in its contract.
export { TOKEN_NAME_MAX_LENGTH };

/**
 * Why `name` cannot name a token, or undefined when it can. Names are shown to operators (`token
 * create`, `tokens list`, audit records), so control characters are refused rather than stored:
 * an ESC or a newline in a name would rewrite the operator's terminal or forge output lines.
 * The HTTP DTO and the bootstrap CLI both end up here. "Control character" is the one definition
 * of libs/ek-trust (printable.ts), which vendor-CA labels and certificate names use too.
 */
export function tokenNameProblem(name: string): string | undefined {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > TOKEN_NAME_MAX_LENGTH) {
    return `token name must be 1-${TOKEN_NAME_MAX_LENGTH} characters`;
  }
  const found = findUnprintable(name);
  if (found !== undefined) {
    return `token name must not contain control characters (found ${codePoint(found.character)})`;
  }
  return undefined;
}

/** `U+001B`: how a character that must not be printed is named in messages. */
export function codePoint(character: string): string {
  return `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}
