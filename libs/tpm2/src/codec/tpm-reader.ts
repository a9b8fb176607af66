import { TpmParseError } from './tpm-parse-error';

/**
 * The one bounds-checked reader for TPM wire structures. TPM 2.0 structures are big-endian
 * (Part 1 §18, Part 2 §5); the TCG PC Client event log is little-endian, hence the `le` readers.
 * Every read names the field it reads, so a failure says exactly where input went wrong.
 * `structure` is the name of the structure being read; nested parsers push theirs with `within`.
 */
export class TpmReader {
  private position = 0;
  private readonly structures: string[];

  constructor(
    readonly bytes: Buffer,
    structure: string,
  ) {
    this.structures = [structure];
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
    return this.structures[this.structures.length - 1]!;
  }

  /** A parse error at the current offset, named after the structure being read. */
  error(field: string, reason: string, offset = this.position): TpmParseError {
    return new TpmParseError(this.structure, field, offset, reason);
  }

  /** Reads a nested structure, so errors inside it name it. */
  within<T>(structure: string, read: () => T): T {
    this.structures.push(structure);
    try {
      return read();
    } finally {
      this.structures.pop();
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

  private take(length: number, field: string): Buffer {
    const start = this.claim(length, field);
    return this.bytes.subarray(start, this.position);
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
    return Buffer.from(this.take(length, field));
  }

  /** TPM2B_*: u16 size ‖ size bytes. `max` is the structure's upper bound from Part 2, when it has one. */
  tpm2b(field: string, max?: number): Buffer {
    const sizeOffset = this.position;
    const size = this.u16(`${field}.size`);
    if (max !== undefined && size > max) {
      throw this.error(`${field}.size`, `${size} exceeds the maximum of ${max}`, sizeOffset);
    }
    return this.bytesOf(size, field);
  }

  /** The bytes between two offsets already read: raw bytes kept beside parsed values. */
  rawSince(start: number): Buffer {
    return Buffer.from(this.bytes.subarray(start, this.position));
  }

  /** Refuses trailing bytes: a structure must be exactly as long as its content. */
  end(): void {
    if (this.remaining !== 0) {
      throw this.error('(end)', `${this.remaining} trailing byte(s)`);
    }
  }
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
  const content = reader.tpm2b(field);
  const inner = new TpmReader(content, reader.structure);
  const value = inner.within(field, () => read(inner));
  inner.end();
  return value;
}
