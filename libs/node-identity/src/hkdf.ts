import { hkdfSync } from 'node:crypto';

/**
 * HKDF-SHA256, RFC 5869 §2 (extract-then-expand), through Node's OpenSSL implementation; the test
 * vectors of RFC 5869 Appendix A.1-A.3 are in hkdf.spec.ts. An empty salt stands for HashLen zero
 * bytes (§2.2). `length` is at most 255 × 32 bytes (§2.3).
 */
export function hkdfSha256(ikm: Buffer, salt: Buffer, info: Buffer, length: number): Buffer {
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length));
}
