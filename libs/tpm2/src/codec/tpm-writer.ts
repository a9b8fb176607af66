/**
 * The one writer for TPM wire structures (big-endian, Part 2 §5) and, for the event log, little-endian
 * fields. Values are range-checked: a number that does not fit its field is a programming error.
 */
export class TpmWriter {
  private readonly chunks: Buffer[] = [];
  private length = 0;

  private push(chunk: Buffer): this {
    this.chunks.push(chunk);
    this.length += chunk.length;
    return this;
  }

  private static check(value: number, bits: number, name: string): void {
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
      throw new RangeError(`${name}: ${value} does not fit in ${bits} bits`);
    }
  }

  u8(value: number): this {
    TpmWriter.check(value, 8, 'u8');
    return this.push(Buffer.from([value]));
  }

  u16(value: number): this {
    TpmWriter.check(value, 16, 'u16');
    const b = Buffer.alloc(2);
    b.writeUInt16BE(value);
    return this.push(b);
  }

  u32(value: number): this {
    TpmWriter.check(value, 32, 'u32');
    const b = Buffer.alloc(4);
    b.writeUInt32BE(value);
    return this.push(b);
  }

  u64(value: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(value);
    return this.push(b);
  }

  u16le(value: number): this {
    TpmWriter.check(value, 16, 'u16');
    const b = Buffer.alloc(2);
    b.writeUInt16LE(value);
    return this.push(b);
  }

  u32le(value: number): this {
    TpmWriter.check(value, 32, 'u32');
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value);
    return this.push(b);
  }

  bytes(value: Uint8Array): this {
    return this.push(Buffer.from(value));
  }

  /** TPM2B_*: u16 size ‖ bytes. */
  tpm2b(value: Uint8Array): this {
    return this.u16(value.length).bytes(value);
  }

  /** A size-prefixed structure: u16 size ‖ whatever `write` writes. */
  sized(write: (inner: TpmWriter) => void): this {
    const inner = new TpmWriter();
    write(inner);
    return this.tpm2b(inner.toBuffer());
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

/** Marshals with a fresh writer. */
export function marshal(write: (writer: TpmWriter) => void): Buffer {
  const writer = new TpmWriter();
  write(writer);
  return writer.toBuffer();
}
