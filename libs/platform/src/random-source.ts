import { randomBytes, randomUUID } from 'node:crypto';

/** Randomness behind an interface: nonces, ids and keys come from here, never from Math.random. */
export abstract class RandomSource {
  abstract bytes(length: number): Buffer;
  abstract uuid(): string;
}

export class CryptoRandomSource extends RandomSource {
  bytes(length: number): Buffer {
    return randomBytes(length);
  }

  uuid(): string {
    return randomUUID();
  }
}
