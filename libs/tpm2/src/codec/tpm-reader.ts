import { TpmParseError } from './tpm-parse-error';

/**
 * The one bounds-checked reader for TPM wire structures. TPM 2.0 structures are big-endian
 * (Part 1 §18, Part 2 §5); the TCG PC Client event log is little-endian, hence the `le` readers.
 * Every read names the field it reads, so a failure says exactly where input went wrong.
 * `structure` is the name of the structure being read; nested parsers push theirs with `within`.
 */
export class TpmReader {
  private position = 0;
  /** The innermost structure being read; `within` restores the outer one when it returns. */
  private current: string;

  constructor(
    readonly bytes: Buffer,
    structure: string,
  ) {
    this.current = structure;
  }

  static from(bytes: Uint8Array, structure: string): TpmReader {
    return new TpmReader(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), structure);
  }

  get offset(): number {
    return this.position;
  }

  get remaining(): number {
    return this.bytes.length - this.position;
  }

  get structure(): string {
    return this.current;
  }

  /** A parse error at the current offset, named after the structure being read. */
  error(field: string, reason: string, offset = this.position): TpmParseError {
    return new TpmParseError(this.structure, field, offset, reason);
  }

  /** Reads a nested structure, so errors inside it name it. */
  within<T>(structure: string, read: () => T): T {
    const outer = this.current;
    this.current = structure;
    try {
      return read();
    } finally {
      this.current = outer;
    }
  }

  /** Checks that `length` bytes remain, advances past them and returns where they start. */
  private claim(length: number, field: string): number {
    if (length < 0 || this.position + length > this.bytes.length) {
      throw this.error(field, `needs ${length} byte(s), ${this.remaining} left`);
    }
    const start = this.position;
    this.position += length;
    return start;
  }

  // Integers are read in place: a subarray per field doubled the cost of parsing a response.
  u8(field: string): number {
    return this.bytes.readUInt8(this.claim(1, field));
  }

  u16(field: string): number {
    return this.bytes.readUInt16BE(this.claim(2, field));
  }

  u32(field: string): number {
    return this.bytes.readUInt32BE(this.claim(4, field));
  }

  u64(field: string): bigint {
    return this.bytes.readBigUInt64BE(this.claim(8, field));
  }

  u16le(field: string): number {
    return this.bytes.readUInt16LE(this.claim(2, field));
  }

  u32le(field: string): number {
    return this.bytes.readUInt32LE(this.claim(4, field));
  }

  u64le(field: string): bigint {
    return this.bytes.readBigUInt64LE(this.claim(8, field));
  }

  /** `length` raw bytes, copied so callers may keep them after the input buffer is reused. */
  bytesOf(length: number, field: string): Buffer {
    const start = this.claim(length, field);
    return copyOut(this.bytes, start, length);
  }

  /**
   * The next `length` bytes as a view into the input, not copied: for large inputs parsed into many
   * small fields that keep the input alive anyway (an IMA list), where a copy or a reader per field
   * showed in profiles.
   */
  view(length: number, field: string): Buffer {
    const start = this.claim(length, field);
    return this.bytes.subarray(start, start + length);
  }

  /** Advances past the next `length` bytes, bounds-checked, and returns where they start: for a field read in place. */
  skip(length: number, field: string): number {
    return this.claim(length, field);
  }

  /**
   * A reader over the next `length` bytes, without copying them: for a part of the input that is
   * only parsed further (a command's parameter area, a sized structure's content).
   */
  sub(length: number, field: string, structure: string): TpmReader {
    const start = this.claim(length, field);
    return new TpmReader(this.bytes.subarray(start, start + length), structure);
  }

  /** TPM2B_*: u16 size ‖ size bytes. `max` is the structure's upper bound from Part 2, when it has one. */
  tpm2b(field: string, max?: number): Buffer {
    return this.bytesOf(this.sizeOf(field, max), field);
  }

  /** A TPM2B's content as a reader of its own, not copied: for sized structures parsed further. */
  tpm2bReader(field: string): TpmReader {
    return this.sub(this.sizeOf(field), field, this.current);
  }

  /** A TPM2B's u16 size field, named `${field}.size` in errors. */
  private sizeOf(field: string, max?: number): number {
    const sizeOffset = this.position;
    // The size field's name is built only for an error: a string per TPM2B showed in profiles.
    if (sizeOffset + 2 > this.bytes.length) {
      throw this.error(`${field}.size`, `needs 2 byte(s), ${this.remaining} left`);
    }
    const size = this.bytes.readUInt16BE(sizeOffset);
    this.position = sizeOffset + 2;
    if (max !== undefined && size > max) {
      throw this.error(`${field}.size`, `${size} exceeds the maximum of ${max}`, sizeOffset);
    }
    return size;
  }

  /** The bytes between two offsets already read: raw bytes kept beside parsed values. */
  rawSince(start: number): Buffer {
    return copyOut(this.bytes, start, Math.max(0, this.position - start));
  }

  /** Refuses trailing bytes: a structure must be exactly as long as its content. */
  end(): void {
    if (this.remaining !== 0) {
      throw this.error('(end)', `${this.remaining} trailing byte(s)`);
    }
  }
}

/**
 * A copy of `length` bytes of `bytes` from `start`. Fields are mostly a few dozen bytes, where a
 * byte loop into a pooled buffer costs half of Buffer.from(subarray) (which makes a view, then copies).
 */
function copyOut(bytes: Buffer, start: number, length: number): Buffer {
  const out = Buffer.allocUnsafe(length);
  if (length > 64) {
    bytes.copy(out, 0, start, start + length);
  } else {
    for (let i = 0; i < length; i += 1) {
      out[i] = bytes[start + i]!;
    }
  }
  return out;
}

/** Parses `bytes` with `read` and refuses trailing bytes. */
export function parseExact<T>(bytes: Uint8Array, structure: string, read: (reader: TpmReader) => T): T {
  const reader = TpmReader.from(bytes, structure);
  const value = read(reader);
  reader.end();
  return value;
}

/**
 * Parses the content of a size-prefixed structure (TPM2B_PUBLIC, TPM2B_ATTEST, …): the size must
 * cover exactly what `read` consumes.
 */
export function readSized<T>(reader: TpmReader, field: string, read: (inner: TpmReader) => T): T {
  const inner = reader.tpm2bReader(field);
  const value = inner.within(field, () => read(inner));
  inner.end();
  return value;
}
