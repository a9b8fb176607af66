import { createHash, hash as oneShotHash } from 'node:crypto';

/**
 * Hash algorithms as IMA names them: the kernel's `hash_algo_name[]` (crypto/hash_info.c) is the
 * prefix of a d-ng digest ("sha256:"), and `enum hash_algo` (include/uapi/linux/hash_info.h) numbers
 * the algorithm in an IMA signature header. Only algorithms node:crypto computes are listed: a digest
 * of any other algorithm cannot be checked, so a list naming one is refused.
 */
export const IMA_HASH_ALGORITHMS = {
  md5: { size: 16, linuxId: 1 },
  sha1: { size: 20, linuxId: 2 },
  sha256: { size: 32, linuxId: 4 },
  sha384: { size: 48, linuxId: 5 },
  sha512: { size: 64, linuxId: 6 },
  sha224: { size: 28, linuxId: 7 },
} as const;

export type ImaHashAlgorithm = keyof typeof IMA_HASH_ALGORITHMS;

/** PCR banks IMA extends (one per allocated TPM bank) and template-hash algorithms of per-bank lists. */
export type ImaBank = 'sha1' | 'sha256' | 'sha384' | 'sha512';
export const IMA_BANKS: readonly ImaBank[] = ['sha1', 'sha256', 'sha384', 'sha512'];

export function isImaHashAlgorithm(name: string): name is ImaHashAlgorithm {
  return Object.prototype.hasOwnProperty.call(IMA_HASH_ALGORITHMS, name);
}

export function isImaBank(name: unknown): name is ImaBank {
  return typeof name === 'string' && (IMA_BANKS as readonly string[]).includes(name);
}

export function digestSize(algorithm: ImaHashAlgorithm): number {
  return IMA_HASH_ALGORITHMS[algorithm].size;
}

/** The algorithm of `enum hash_algo` number `id`, when node:crypto computes it. */
export function algorithmOfLinuxId(id: number): ImaHashAlgorithm | undefined {
  return (Object.keys(IMA_HASH_ALGORITHMS) as ImaHashAlgorithm[]).find((name) => IMA_HASH_ALGORITHMS[name].linuxId === id);
}

// crypto.hash (Node ≥ 20.12) skips the Hash object: for inputs of a few hundred bytes the object
// costs as much as the hashing (bench/ima.bench.ts measures both).
const hasOneShot = typeof oneShotHash === 'function';

export function digestOf(algorithm: ImaHashAlgorithm, data: Uint8Array): Buffer {
  // One argument, not a rest list: the replay calls this two or three times an entry.
  return hasOneShot ? (oneShotHash(algorithm, data, 'buffer') as unknown as Buffer) : createHash(algorithm).update(data).digest();
}
