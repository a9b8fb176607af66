/**
 * A bounds-checked DER reader (X.690 §8, §10) with exactly the leniency real EK certificates need and
 * no more: every element keeps its original bytes (signatures are verified over them, never over a
 * re-encoding), non-minimal length octets are read and reported instead of refused, and everything
 * else (indefinite lengths, high tag numbers, lengths past the end) is a typed DerError.
 */

/** A structural error: `field` names what was being read, `offset` is absolute in the parsed buffer. */
export class DerError extends Error {
  constructor(
    readonly field: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`${field} at offset ${offset}: ${reason}`);
    this.name = 'DerError';
  }
}

/** Universal tags used here (X.680 §8.4); context-specific tags are built with `contextTag`. */
export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  SET: 0x31,
  NUMERIC_STRING: 0x12,
  PRINTABLE_STRING: 0x13,
  TELETEX_STRING: 0x14,
  IA5_STRING: 0x16,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VISIBLE_STRING: 0x1a,
  UNIVERSAL_STRING: 0x1c,
  BMP_STRING: 0x1e,
} as const;

/** `[n]` context-specific tag, constructed (EXPLICIT or a constructed IMPLICIT type) or primitive. */
export function contextTag(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

/** One TLV. Offsets are absolute in `base`; `raw` and `content` are views into it. */
export interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly contentStart: number;
  readonly end: number;
  /** The whole element, header included, exactly as encoded. */
  readonly raw: Buffer;
  readonly content: Buffer;
  /** The length was encoded in long form where short form (or fewer octets) would do: BER, not DER. */
  readonly nonMinimalLength: boolean;
}

/** Reads the TLV starting at `offset` of `base`, which must end at or before `limit`. */
export function readTlv(base: Buffer, offset: number, field: string, limit = base.length): Tlv {
  if (offset >= limit) {
    throw new DerError(field, offset, 'missing (end of data)');
  }
  const tag = base[offset]!;
  if ((tag & 0x1f) === 0x1f) {
    throw new DerError(field, offset, `high tag number form (0x${tag.toString(16)}) is not used by X.509`);
  }
  if (offset + 1 >= limit) {
    throw new DerError(field, offset, 'truncated: no length octet');
  }
  const first = base[offset + 1]!;
  let length: number;
  let headerLength: number;
  let nonMinimalLength = false;
  if (first < 0x80) {
    length = first;
    headerLength = 2;
  } else if (first === 0x80) {
    throw new DerError(field, offset, 'indefinite length (BER) is not allowed in a certificate');
  } else {
    const count = first & 0x7f;
    if (count > 4) {
      throw new DerError(field, offset, `length of ${count} octets is out of range`);
    }
    if (offset + 2 + count > limit) {
      throw new DerError(field, offset, 'truncated length octets');
    }
    length = 0;
    for (let i = 0; i < count; i++) {
      length = length * 256 + base[offset + 2 + i]!;
    }
    headerLength = 2 + count;
    nonMinimalLength = length < 0x80 || base[offset + 2] === 0;
  }
  const contentStart = offset + headerLength;
  const end = contentStart + length;
  if (end > limit) {
    throw new DerError(field, offset, `length ${length} runs past the end of the enclosing data (${limit - contentStart} bytes left)`);
  }
  return {
    tag,
    start: offset,
    contentStart,
    end,
    raw: base.subarray(offset, end),
    content: base.subarray(contentStart, end),
    nonMinimalLength,
  };
}

function tagName(tag: number): string {
  return `0x${tag.toString(16).padStart(2, '0')}`;
}

/**
 * Walks the children of a constructed element in order. `next` demands a tag; `optional` takes the
 * next child only when it has the given tag; `end` refuses anything left over.
 */
export class DerCursor {
  private offset: number;
  /** Set when any element read through this cursor (or cursors made from it) had a BER length. */
  readonly flags: { nonMinimalLength: boolean };

  constructor(
    private readonly base: Buffer,
    private readonly parent: Tlv,
    private readonly field: string,
    flags?: { nonMinimalLength: boolean },
  ) {
    this.offset = parent.contentStart;
    this.flags = flags ?? { nonMinimalLength: parent.nonMinimalLength };
  }

  /** A cursor over `tlv`'s children, sharing the BER-length flag. */
  static over(base: Buffer, tlv: Tlv, field: string, flags?: { nonMinimalLength: boolean }): DerCursor {
    if ((tlv.tag & 0x20) === 0) {
      throw new DerError(field, tlv.start, `expected a constructed element, found primitive tag ${tagName(tlv.tag)}`);
    }
    if (flags !== undefined && tlv.nonMinimalLength) {
      flags.nonMinimalLength = true;
    }
    return new DerCursor(base, tlv, field, flags);
  }

  get done(): boolean {
    return this.offset >= this.parent.end;
  }

  peekTag(): number | undefined {
    return this.done ? undefined : this.base[this.offset];
  }

  next(field: string, tag?: number): Tlv {
    const tlv = readTlv(this.base, this.offset, `${this.field}.${field}`, this.parent.end);
    if (tag !== undefined && tlv.tag !== tag) {
      throw new DerError(`${this.field}.${field}`, tlv.start, `expected tag ${tagName(tag)}, found ${tagName(tlv.tag)}`);
    }
    if (tlv.nonMinimalLength) {
      this.flags.nonMinimalLength = true;
    }
    this.offset = tlv.end;
    return tlv;
  }

  optional(field: string, tag: number): Tlv | undefined {
    return this.peekTag() === tag ? this.next(field, tag) : undefined;
  }

  /** A cursor over the next child, which must be constructed with `tag`. */
  enter(field: string, tag: number): DerCursor {
    return DerCursor.over(this.base, this.next(field, tag), `${this.field}.${field}`, this.flags);
  }

  /** Every remaining child. */
  rest(field: string): Tlv[] {
    const out: Tlv[] = [];
    while (!this.done) {
      out.push(this.next(`${field}[${out.length}]`));
    }
    return out;
  }

  end(): void {
    if (!this.done) {
      throw new DerError(this.field, this.offset, `${this.parent.end - this.offset} unexpected trailing bytes`);
    }
  }
}

/** OBJECT IDENTIFIER content → dotted decimal (X.690 §8.19). */
const oidCache = new Map<string, string>();

export function decodeOid(tlv: Tlv, field: string): string {
  const bytes = tlv.content;
  if (tlv.tag !== TAG.OID || bytes.length === 0) {
    throw new DerError(field, tlv.start, 'not an OBJECT IDENTIFIER');
  }
  // Certificates repeat a few dozen OIDs; remember the ones seen (bounded: arbitrary input cannot grow it far).
  const cacheKey = bytes.length <= 32 ? bytes.toString('latin1') : undefined;
  const cached = cacheKey === undefined ? undefined : oidCache.get(cacheKey);
  if (cached !== undefined) {
    return cached;
  }
  const dotted = decodeOidArcs(tlv, field);
  if (cacheKey !== undefined && oidCache.size < 1024) {
    oidCache.set(cacheKey, dotted);
  }
  return dotted;
}

function decodeOidArcs(tlv: Tlv, field: string): string {
  const bytes = tlv.content;
  const arcs: number[] = [];
  let value = 0;
  let started = false;
  for (let i = 0; i < bytes.length; i++) {
    const byte = bytes[i]!;
    if (!started && byte === 0x80) {
      throw new DerError(field, tlv.contentStart + i, 'OID arc with a leading 0x80 octet');
    }
    started = true;
    value = value * 128 + (byte & 0x7f);
    if (value > Number.MAX_SAFE_INTEGER / 128) {
      throw new DerError(field, tlv.contentStart + i, 'OID arc too large');
    }
    if ((byte & 0x80) === 0) {
      arcs.push(value);
      value = 0;
      started = false;
    }
  }
  if (started) {
    throw new DerError(field, tlv.end - 1, 'OID ends inside an arc');
  }
  const first = arcs[0]!;
  const head = first < 40 ? [0, first] : first < 80 ? [1, first - 40] : [2, first - 80];
  return [...head, ...arcs.slice(1)].join('.');
}

/** What an INTEGER's content octets say about their encoding (X.690 §8.3.2). */
export interface DerInteger {
  /** The content octets exactly as encoded (two's complement, big-endian). */
  readonly bytes: Buffer;
  readonly negative: boolean;
  /** Redundant leading 0x00/0xFF octets: valid BER, invalid DER. */
  readonly nonMinimal: boolean;
}

export function decodeInteger(tlv: Tlv, field: string): DerInteger {
  const bytes = tlv.content;
  if (tlv.tag !== TAG.INTEGER || bytes.length === 0) {
    throw new DerError(field, tlv.start, 'not an INTEGER');
  }
  const b0 = bytes[0]!;
  const b1 = bytes[1];
  const nonMinimal = b1 !== undefined && ((b0 === 0x00 && (b1 & 0x80) === 0) || (b0 === 0xff && (b1 & 0x80) !== 0));
  return { bytes, negative: (b0 & 0x80) !== 0, nonMinimal };
}

/** A small non-negative INTEGER (versions, path lengths, salt lengths). */
export function decodeSmallInteger(tlv: Tlv, field: string): number {
  const { bytes, negative } = decodeInteger(tlv, field);
  if (negative || bytes.length > 6) {
    throw new DerError(field, tlv.start, 'expected a small non-negative INTEGER');
  }
  return bytes.reduce((acc, byte) => acc * 256 + byte, 0);
}

export function decodeBoolean(tlv: Tlv, field: string): boolean {
  if (tlv.tag !== TAG.BOOLEAN || tlv.content.length !== 1) {
    throw new DerError(field, tlv.start, 'not a BOOLEAN');
  }
  // DER says TRUE is 0xFF; BER allows any non-zero octet. Nothing signed depends on re-encoding it.
  return tlv.content[0] !== 0;
}

/** BIT STRING → its bits, without the unused-bits octet. */
export function decodeBitString(tlv: Tlv, field: string): { bytes: Buffer; unusedBits: number } {
  if (tlv.tag !== TAG.BIT_STRING || tlv.content.length === 0) {
    throw new DerError(field, tlv.start, 'not a BIT STRING');
  }
  const unusedBits = tlv.content[0]!;
  if (unusedBits > 7 || (unusedBits > 0 && tlv.content.length === 1)) {
    throw new DerError(field, tlv.start, `invalid unused-bits count ${unusedBits}`);
  }
  return { bytes: tlv.content.subarray(1), unusedBits };
}

const TIME_PATTERNS = {
  // RFC 5280 §4.1.2.5.1 wants YYMMDDHHMMSSZ; BER also allows omitting the seconds.
  [TAG.UTC_TIME]: /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?Z$/,
  [TAG.GENERALIZED_TIME]: /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})?(?:\.\d+)?Z$/,
} as const;

/** UTCTime (YY ≥ 50 → 19YY, RFC 5280 §4.1.2.5.1) or GeneralizedTime, UTC only. */
export function decodeTime(tlv: Tlv, field: string): Date {
  if (tlv.tag !== TAG.UTC_TIME && tlv.tag !== TAG.GENERALIZED_TIME) {
    throw new DerError(field, tlv.start, 'expected UTCTime or GeneralizedTime');
  }
  const text = tlv.content.toString('latin1');
  const match = TIME_PATTERNS[tlv.tag].exec(text);
  if (match === null) {
    throw new DerError(field, tlv.start, `malformed time ${JSON.stringify(text)}`);
  }
  let year = Number(match[1]);
  if (tlv.tag === TAG.UTC_TIME) {
    year += year >= 50 ? 1900 : 2000;
  }
  const [month, day, hour, minute, second] = [match[2], match[3], match[4], match[5], match[6] ?? '0'].map(Number) as [number, number, number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  if (
    month < 1 || month > 12 || date.getUTCDate() !== day || hour > 23 || minute > 59 || second > 59 || Number.isNaN(date.getTime())
  ) {
    throw new DerError(field, tlv.start, `invalid date ${JSON.stringify(text)}`);
  }
  // Date.UTC maps years 0-99 to 1900-1999; GeneralizedTime years are literal.
  date.setUTCFullYear(year);
  return date;
}

/** The directory string types X.520 names use, decoded to text; undefined for anything else. */
export function decodeString(tlv: Tlv): string | undefined {
  const bytes = tlv.content;
  switch (tlv.tag) {
    case TAG.UTF8_STRING:
      return bytes.toString('utf8');
    case TAG.PRINTABLE_STRING:
    case TAG.IA5_STRING:
    case TAG.NUMERIC_STRING:
    case TAG.VISIBLE_STRING:
    case TAG.TELETEX_STRING:
      return bytes.toString('latin1');
    case TAG.BMP_STRING: {
      if (bytes.length % 2 !== 0) {
        return undefined;
      }
      const swapped = Buffer.from(bytes);
      swapped.swap16();
      return swapped.toString('utf16le');
    }
    case TAG.UNIVERSAL_STRING: {
      if (bytes.length % 4 !== 0) {
        return undefined;
      }
      const points: number[] = [];
      for (let i = 0; i < bytes.length; i += 4) {
        points.push(bytes.readUInt32BE(i));
      }
      try {
        return String.fromCodePoint(...points);
      } catch {
        return undefined;
      }
    }
    default:
      return undefined;
  }
}

/** Encodes one TLV with a minimal (DER) length. */
export function encodeTlv(tag: number, content: Uint8Array): Buffer {
  const length = content.length;
  let header: Buffer;
  if (length < 0x80) {
    header = Buffer.from([tag, length]);
  } else {
    const octets: number[] = [];
    for (let n = length; n > 0; n = Math.floor(n / 256)) {
      octets.unshift(n % 256);
    }
    header = Buffer.from([tag, 0x80 | octets.length, ...octets]);
  }
  return Buffer.concat([header, content]);
}

/**
 * X.690 §11.6: the elements of a DER SET OF appear in ascending order of their encodings, compared
 * as octet strings with the shorter one padded with trailing zero octets.
 */
export function compareSetOfEncodings(a: Buffer, b: Buffer): number {
  const length = Math.max(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    if (x !== y) {
      return x - y;
    }
  }
  return 0;
}
