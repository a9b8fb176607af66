import { createHash, randomBytes } from 'node:crypto';

/**
 * Operator tokens: `rks_` ‖ 32 random bytes in base64url. Only SHA-256 of the whole token is stored:
 * the token has 256 bits of entropy, so a fast hash is as good as a slow one and keeps every API
 * call at one indexed lookup. The prefix makes leaked tokens easy to find with secret scanners.
 */
export const TOKEN_PREFIX = 'rks_';

const TOKEN_SHAPE = /^rks_[A-Za-z0-9_-]{43}$/;

export function generateToken(random: (n: number) => Buffer = randomBytes): string {
  return `${TOKEN_PREFIX}${random(32).toString('base64url')}`;
}

export function looksLikeToken(text: string): boolean {
  return TOKEN_SHAPE.test(text);
}

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}
