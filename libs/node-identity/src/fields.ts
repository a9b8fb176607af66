import { NodeIdentityInputError } from './node-identity-errors';

/**
 * The unambiguous concatenation of `fields`: each as a 2-byte big-endian length then its bytes, so
 * no two different lists (e.g. registration "ab" + nonce "c" and "a" + "bc") give the same bytes.
 * Strings are UTF-8.
 */
export function lengthPrefixed(fields: readonly (Buffer | string)[]): Buffer {
  const parts: Buffer[] = [];
  for (const field of fields) {
    const bytes = typeof field === 'string' ? Buffer.from(field, 'utf8') : field;
    if (bytes.length > 0xffff) {
      throw new NodeIdentityInputError(`a derivation field of ${bytes.length} bytes is longer than 65535`);
    }
    const length = Buffer.alloc(2);
    length.writeUInt16BE(bytes.length);
    parts.push(length, bytes);
  }
  return Buffer.concat(parts);
}
