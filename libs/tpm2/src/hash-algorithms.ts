import { createHash, createHmac } from 'node:crypto';
import { algName, TPM_ALG_ID } from './constants';

export interface HashAlgorithm {
  readonly alg: number;
  /** node:crypto's name for it. */
  readonly node: string;
  /** Digest size in bytes (Part 2 §10.1 TPMU_HA sizes). */
  readonly size: number;
  /** Name of the PCR bank as tpm2-tools writes it (`sha256`). */
  readonly bank: string;
}

const HASHES: readonly HashAlgorithm[] = [
  { alg: TPM_ALG_ID.TPM_ALG_SHA1, node: 'sha1', size: 20, bank: 'sha1' },
  { alg: TPM_ALG_ID.TPM_ALG_SHA256, node: 'sha256', size: 32, bank: 'sha256' },
  { alg: TPM_ALG_ID.TPM_ALG_SHA384, node: 'sha384', size: 48, bank: 'sha384' },
  { alg: TPM_ALG_ID.TPM_ALG_SHA512, node: 'sha512', size: 64, bank: 'sha512' },
  { alg: TPM_ALG_ID.TPM_ALG_SHA3_256, node: 'sha3-256', size: 32, bank: 'sha3_256' },
  { alg: TPM_ALG_ID.TPM_ALG_SHA3_384, node: 'sha3-384', size: 48, bank: 'sha3_384' },
  { alg: TPM_ALG_ID.TPM_ALG_SHA3_512, node: 'sha3-512', size: 64, bank: 'sha3_512' },
];

const BY_ALG = new Map(HASHES.map((h) => [h.alg, h]));
const BY_BANK = new Map(HASHES.map((h) => [h.bank, h]));

/** Thrown when a structure names a hash algorithm this library does not implement. */
export class UnsupportedHashError extends Error {
  constructor(readonly alg: number | string) {
    super(`unsupported hash algorithm ${typeof alg === 'number' ? algName(alg) : alg}`);
    this.name = 'UnsupportedHashError';
  }
}

export function isHashAlgorithm(alg: number): boolean {
  return BY_ALG.has(alg);
}

export function hashAlgorithm(alg: number): HashAlgorithm {
  const found = BY_ALG.get(alg);
  if (found === undefined) {
    throw new UnsupportedHashError(alg);
  }
  return found;
}

/** `sha256` → TPM_ALG_SHA256 (PCR bank names as tpm2-tools spells them). */
export function hashAlgorithmByBank(bank: string): HashAlgorithm {
  const found = BY_BANK.get(bank.toLowerCase());
  if (found === undefined) {
    throw new UnsupportedHashError(bank);
  }
  return found;
}

export function digest(alg: number, ...parts: readonly Uint8Array[]): Buffer {
  const hash = createHash(hashAlgorithm(alg).node);
  for (const part of parts) {
    hash.update(part);
  }
  return hash.digest();
}

export function hmac(alg: number, key: Uint8Array, ...parts: readonly Uint8Array[]): Buffer {
  const mac = createHmac(hashAlgorithm(alg).node, key);
  for (const part of parts) {
    mac.update(part);
  }
  return mac.digest();
}
