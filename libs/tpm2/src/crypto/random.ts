import { randomBytes } from 'node:crypto';

/**
 * Where seeds, OAEP seeds and sensitive seedValues come from. Every function that draws randomness
 * takes one, defaulting to the system CSPRNG, so tests can replay published vectors byte for byte.
 */
export type RandomSource = (size: number) => Buffer;

export const systemRandom: RandomSource = (size) => randomBytes(size);

/** Draws exactly `size` bytes, refusing a source that returns fewer or more. */
export function draw(random: RandomSource, size: number): Buffer {
  const bytes = random(size);
  if (bytes.length !== size) {
    throw new RangeError(`random source returned ${bytes.length} bytes, ${size} were requested`);
  }
  return bytes;
}
