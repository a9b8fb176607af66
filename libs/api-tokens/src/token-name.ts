import { firstControlCharacter } from '@rackseal/platform';

export const TOKEN_NAME_MAX_LENGTH = 100;

/**
 * Why `name` cannot name a token, or undefined when it can. Names are shown to operators (`token
 * create`, `tokens list`, audit records), so control characters are refused rather than stored:
 * an ESC or a newline in a name would rewrite the operator's terminal or forge output lines.
 * The HTTP DTO and the bootstrap CLI both end up here.
 */
export function tokenNameProblem(name: string): string | undefined {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > TOKEN_NAME_MAX_LENGTH) {
    return `token name must be 1-${TOKEN_NAME_MAX_LENGTH} characters`;
  }
  const control = firstControlCharacter(name);
  if (control !== undefined) {
    return `token name must not contain control characters (found ${control})`;
  }
  return undefined;
}
