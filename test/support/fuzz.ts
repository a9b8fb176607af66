/**
 * A small deterministic mutation fuzzer for the binary parsers: from valid seed inputs it derives
 * mutants (bit flips, byte overwrites, truncations, extensions, duplicated and deleted runs,
 * boundary values written over 1-, 2- and 4-byte fields) and checks that a parser either returns or
 * throws its one typed error. Seeded, so a failure reproduces with the printed seed and index.
 */

/** xorshift32: fast, seedable, good enough to choose mutations. */
export class Prng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0 || 0x9e3779b9;
  }

  next(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  below(n: number): number {
    return n <= 0 ? 0 : this.next() % n;
  }
}

const BOUNDARY_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff];
const BOUNDARY_U16 = [0x0000, 0x0001, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xfffe, 0xffff];
const BOUNDARY_U32 = [0x00000000, 0x00000001, 0x000000ff, 0x7fffffff, 0x80000000, 0xffffffff];

export function mutate(seedInput: Buffer, rng: Prng): Buffer {
  const input = Buffer.from(seedInput);
  const rounds = 1 + rng.below(4);
  let out = input;
  for (let i = 0; i < rounds; i += 1) {
    const at = rng.below(Math.max(out.length, 1));
    switch (rng.below(8)) {
      case 0:
        if (out.length > 0) {
          out[at] = out[at]! ^ (1 << rng.below(8));
        }
        break;
      case 1:
        if (out.length > 0) {
          out[at] = BOUNDARY_BYTES[rng.below(BOUNDARY_BYTES.length)]!;
        }
        break;
      case 2:
        out = out.subarray(0, rng.below(out.length + 1));
        break;
      case 3: {
        const extra = Buffer.alloc(1 + rng.below(16));
        for (let j = 0; j < extra.length; j += 1) {
          extra[j] = rng.below(256);
        }
        out = Buffer.concat([out.subarray(0, at), extra, out.subarray(at)]);
        break;
      }
      case 4:
        if (at + 2 <= out.length) {
          out.writeUInt16BE(BOUNDARY_U16[rng.below(BOUNDARY_U16.length)]!, at);
        }
        break;
      case 5:
        if (at + 4 <= out.length) {
          out.writeUInt32BE(BOUNDARY_U32[rng.below(BOUNDARY_U32.length)]!, at);
        }
        break;
      case 6: {
        const length = rng.below(Math.min(32, out.length - at) + 1);
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + length)]);
        break;
      }
      default: {
        const length = rng.below(Math.min(32, out.length - at) + 1);
        out = Buffer.concat([out.subarray(0, at + length), out.subarray(at, at + length), out.subarray(at + length)]);
      }
    }
    out = Buffer.from(out);
  }
  return out;
}

export interface FuzzReport {
  readonly inputs: number;
  readonly accepted: number;
  readonly refused: number;
  /** Exceptions other than the expected typed error: each is a bug. */
  readonly crashes: number;
  /** The first few crashes, with the input that caused them. */
  readonly unexpected: { index: number; input: string; error: string }[];
  readonly slowestMs: number;
  readonly totalMs: number;
}

/**
 * Runs `parse` over `count` mutants of `seeds`. `isExpected` tells the parser's typed refusal
 * from a crash. Records at most 5 unexpected errors with the input that caused them.
 */
export function fuzz(
  seeds: readonly Buffer[],
  parse: (input: Buffer) => unknown,
  isExpected: (error: unknown) => boolean,
  count: number,
  seed = 0x5eed,
): FuzzReport {
  const rng = new Prng(seed);
  const unexpected: FuzzReport['unexpected'] = [];
  let accepted = 0;
  let refused = 0;
  let crashes = 0;
  let slowestMs = 0;
  const started = performance.now();
  for (let index = 0; index < count; index += 1) {
    const input = mutate(seeds[index % seeds.length]!, rng);
    const t0 = performance.now();
    try {
      parse(input);
      accepted += 1;
    } catch (error) {
      if (isExpected(error)) {
        refused += 1;
      } else {
        crashes += 1;
        if (unexpected.length < 5) {
          unexpected.push({ index, input: input.toString('hex'), error: String((error as Error)?.stack ?? error) });
        }
      }
    }
    slowestMs = Math.max(slowestMs, performance.now() - t0);
  }
  return { inputs: count, accepted, refused, crashes, unexpected, slowestMs, totalMs: performance.now() - started };
}
