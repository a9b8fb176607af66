/**
 * The one writer for TPM wire structures (big-endian, Part 2 §5) and, for the event log, little-endian
 * fields. Values are range-checked: a number that does not fit its field is a programming error.
 */
export class TpmWriter {
  // One buffer, grown by doubling: a Buffer per field and a concat at the end cost more than
  // the fields themselves on the command path (marshalling a command for a 20 µs swtpm round trip).
  private buffer: Buffer;
  private length = 0;

  /** `capacity`: the bytes expected, when known, so the buffer never grows. */
  constructor(capacity = 64) {
    this.buffer = Buffer.allocUnsafe(capacity);
  }

  /** Room for `size` more bytes; returns where they start. Bytes past `length` are never exposed. */
  private reserve(size: number): number {
    const at = this.length;
    const needed = at + size;
    if (needed > this.buffer.length) {
      const grown = Buffer.allocUnsafe(Math.max(needed, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, at);
      this.buffer = grown;
    }
    this.length = needed;
    return at;
  }

  private static check(value: number, bits: number, name: string): void {
    if (!Number.isInteger(value) || value < 0 || value >= 2 ** bits) {
      throw new RangeError(`${name}: ${value} does not fit in ${bits} bits`);
    }
  }

  u8(value: number): this {
    TpmWriter.check(value, 8, 'u8');
    // reserve() may replace the buffer, so it runs before the buffer is read.
    const at = this.reserve(1);
    this.buffer[at] = value;
    return this;
  }

  u16(value: number): this {
    TpmWriter.check(value, 16, 'u16');
    const at = this.reserve(2);
    this.buffer.writeUInt16BE(value, at);
    return this;
  }

  u32(value: number): this {
    TpmWriter.check(value, 32, 'u32');
    const at = this.reserve(4);
    this.buffer.writeUInt32BE(value, at);
    return this;
  }

  u64(value: bigint): this {
    const at = this.reserve(8);
    try {
      this.buffer.writeBigUInt64BE(value, at);
    } catch (error) {
      // Nothing was written: the reserved bytes must not become part of the output.
      this.length = at;
      throw error;
    }
    return this;
  }

  u16le(value: number): this {
    TpmWriter.check(value, 16, 'u16');
    const at = this.reserve(2);
    this.buffer.writeUInt16LE(value, at);
    return this;
  }

  u32le(value: number): this {
    TpmWriter.check(value, 32, 'u32');
    const at = this.reserve(4);
    this.buffer.writeUInt32LE(value, at);
    return this;
  }

  bytes(value: Uint8Array): this {
    const at = this.reserve(value.length);
    this.buffer.set(value, at);
    return this;
  }

  /** TPM2B_*: u16 size ‖ bytes. */
  tpm2b(value: Uint8Array): this {
    return this.u16(value.length).bytes(value);
  }

  /** A size-prefixed structure: u16 size ‖ whatever `write` writes, written in place and sized after. */
  sized(write: (inner: TpmWriter) => void): this {
    const at = this.reserve(2);
    try {
      write(this);
      TpmWriter.check(this.length - at - 2, 16, 'u16');
    } catch (error) {
      // As if nothing had been written: a failed structure leaves no partial bytes behind.
      this.length = at;
      throw error;
    }
    this.buffer.writeUInt16BE(this.length - at - 2, at);
    return this;
  }

  /**
   * The bytes written so far. Later writes never change them: they go past the end or into a
   * grown copy.
   */
  toBuffer(): Buffer {
    return this.length === this.buffer.length ? this.buffer : this.buffer.subarray(0, this.length);
  }
}

/** Marshals with a fresh writer; `capacity` as TpmWriter's (a size the output usually fits). */
export function marshal(write: (writer: TpmWriter) => void, capacity?: number): Buffer {
  const writer = new TpmWriter(capacity);
  write(writer);
  return writer.toBuffer();
}
