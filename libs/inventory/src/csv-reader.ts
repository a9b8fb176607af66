/**
 * A streaming RFC 4180 reader: records come out as the bytes come in, so memory is bounded by the
 * longest record, never by the file. Handles a UTF-8 BOM, CRLF / LF / lone CR line ends, quoted
 * fields with `""` escapes and embedded line breaks. Every record carries the physical line it
 * starts on (1-based, counting the header), which is what an operator sees in an editor.
 *
 * Limits (fields per record, characters per record, bytes per file) end the read with
 * CsvLimitError as soon as they are crossed, so memory is bounded whatever the input; bytes that are
 * not UTF-8 end it with CsvEncodingError.
 *
 * A malformed record (a quote inside an unquoted field, text after a closing quote, a quote never
 * closed) is reported as a record with `error` and reading resumes at the next line end, so one bad
 * row never hides the rows after it. Blank lines are skipped.
 */

export interface CsvRecord {
  /** Line the record starts on (1-based). */
  readonly line: number;
  readonly fields: string[];
  /** Set when the record is not valid CSV; `fields` is then whatever was read before the problem. */
  readonly error?: string;
}

/** Which limit a CsvLimitError is about. */
export type CsvLimit = 'file-bytes' | 'record-chars' | 'fields-per-record';

/**
 * Input that would cost unbounded memory: the read stops at the limit instead of buffering on
 * (a 20,000-comma line is 20,000 strings before any check could refuse it).
 */
export class CsvLimitError extends Error {
  constructor(
    readonly line: number,
    readonly limit: CsvLimit,
    readonly max: number,
    message: string,
  ) {
    super(message);
    this.name = 'CsvLimitError';
  }
}

/** The bytes are not UTF-8 (RFC 3629): refused rather than read as replacement characters. */
export class CsvEncodingError extends Error {
  constructor(readonly line: number) {
    super(`line ${line}: the file is not valid UTF-8; save it as UTF-8 ("CSV UTF-8" in a spreadsheet)`);
    this.name = 'CsvEncodingError';
  }
}

export interface CsvReaderOptions {
  /** Largest record, in characters (delimiters and quotes included). Default 64 KiB. */
  readonly maxRecordChars?: number;
  /** Most fields in one record. Default 64. */
  readonly maxFieldsPerRecord?: number;
  /** Largest input, in bytes. Default unlimited. */
  readonly maxFileBytes?: number;
}

/** Length of the longest prefix of `bytes` that is UTF-8 (a sequence cut at the end counts as valid). */
function validUtf8Prefix(bytes: Uint8Array): number {
  const valid = (end: number): boolean => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, end), { stream: true });
      return true;
    } catch {
      return false;
    }
  };
  let low = 0;
  let high = bytes.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (valid(mid)) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return low;
}

export const DEFAULT_MAX_RECORD_CHARS = 64 * 1024;
export const DEFAULT_MAX_FIELDS_PER_RECORD = 64;

const QUOTE = 0x22;
const COMMA = 0x2c;
const CR = 0x0d;
const LF = 0x0a;

type State = 'field-start' | 'unquoted' | 'quoted' | 'quote-in-quoted' | 'skip-to-eol';

export async function* readCsv(source: AsyncIterable<Uint8Array | string>, options: CsvReaderOptions = {}): AsyncGenerator<CsvRecord> {
  const maxChars = options.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS;
  const maxFields = options.maxFieldsPerRecord ?? DEFAULT_MAX_FIELDS_PER_RECORD;
  const maxBytes = options.maxFileBytes ?? Number.POSITIVE_INFINITY;
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });
  let bytes = 0;
  let state: State = 'field-start';
  let fields: string[] = [];
  let field = '';
  let recordChars = 0;
  let line = 1;
  let recordLine = 1;
  let error: string | undefined;
  let afterCr = false;
  let anything = false;
  const out: CsvRecord[] = [];

  const endField = (): void => {
    if (fields.length >= maxFields) {
      throw new CsvLimitError(recordLine, 'fields-per-record', maxFields, `line ${recordLine}: more than ${maxFields} fields in one record (the limit per record)`);
    }
    fields.push(field);
    field = '';
    anything = true;
  };
  const endRecord = (): void => {
    if (anything || fields.length > 0) {
      out.push(error === undefined ? { line: recordLine, fields } : { line: recordLine, fields, error });
    }
    fields = [];
    field = '';
    error = undefined;
    anything = false;
    recordChars = 0;
    state = 'field-start';
  };
  const fail = (message: string): void => {
    error ??= message;
    state = 'skip-to-eol';
  };

  let first = true;
  const feed = (input: string): void => {
    const text = first && input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
    if (input.length > 0) {
      first = false;
    }
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (afterCr) {
        afterCr = false;
        if (c === LF) {
          if (state === 'quoted') {
            field += '\n';
          }
          continue; // the LF of a CRLF already counted
        }
      }
      if (c === LF || c === CR) {
        line++;
        afterCr = c === CR;
      }
      switch (state) {
        case 'field-start':
          if (c === QUOTE) {
            state = 'quoted';
            anything = true;
          } else if (c === COMMA) {
            endField();
          } else if (c === LF || c === CR) {
            if (anything || fields.length > 0) {
              endField();
            }
            endRecord();
            recordLine = line;
          } else {
            state = 'unquoted';
            start = i;
            anything = true;
            // scan the rest of an unquoted field in one go
            const j = endOfUnquotedRun(text, i + 1);
            field += text.slice(start, j);
            recordChars += j - i - 1;
            i = j - 1;
          }
          break;
        case 'unquoted':
          if (c === COMMA) {
            endField();
            state = 'field-start';
          } else if (c === LF || c === CR) {
            endField();
            endRecord();
            recordLine = line;
          } else if (c === QUOTE) {
            fail(`a quote inside an unquoted field (field ${fields.length + 1}); quote the whole field and double the quote`);
          } else {
            const j = endOfUnquotedRun(text, i + 1);
            field += text.slice(i, j);
            recordChars += j - i - 1;
            i = j - 1;
          }
          break;
        case 'quoted':
          if (c === QUOTE) {
            state = 'quote-in-quoted';
          } else if (c !== LF && c !== CR) {
            let j = i + 1;
            while (j < text.length) {
              const d = text.charCodeAt(j);
              if (d === QUOTE || d === LF || d === CR) {
                break;
              }
              j++;
            }
            field += text.slice(i, j);
            recordChars += j - i - 1;
            i = j - 1;
          }
          break;
        case 'quote-in-quoted':
          if (c === QUOTE) {
            field += '"';
            state = 'quoted';
          } else if (c === COMMA) {
            endField();
            state = 'field-start';
          } else if (c === LF || c === CR) {
            endField();
            endRecord();
            recordLine = line;
          } else {
            fail(`text after the closing quote of field ${fields.length + 1}`);
          }
          break;
        case 'skip-to-eol':
          if (c === LF || c === CR) {
            endRecord();
            recordLine = line;
          }
          break;
      }
      if (state === 'quoted' && (c === LF || c === CR)) {
        // a line break inside quotes is data; keep CRLF as written
        field += c === CR ? '\r' : '\n';
        if (c === CR && i + 1 < text.length && text.charCodeAt(i + 1) === LF) {
          field += '\n';
          i++;
          afterCr = false;
        }
      }
      recordChars++;
      if (recordChars > maxChars) {
        throw new CsvLimitError(recordLine, 'record-chars', maxChars, `line ${recordLine}: record longer than ${maxChars} characters (the limit per record)`);
      }
    }
  };

  const decode = (chunk?: Uint8Array): string => {
    try {
      return chunk === undefined ? decoder.decode() : decoder.decode(chunk, { stream: true });
    } catch {
      if (chunk !== undefined) {
        // Read the chunk's valid prefix, so the error names the line of the first bad byte.
        feed(new TextDecoder('utf-8').decode(chunk.subarray(0, validUtf8Prefix(chunk)), { stream: true }));
      }
      throw new CsvEncodingError(line);
    }
  };

  for await (const chunk of source) {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
    if (bytes > maxBytes) {
      throw new CsvLimitError(line, 'file-bytes', maxBytes, `line ${line}: the file is larger than ${maxBytes} bytes (the limit per file)`);
    }
    feed(typeof chunk === 'string' ? chunk : decode(chunk));
    // yield what this chunk completed
    while (out.length > 0) {
      yield out.shift()!;
    }
  }
  feed(decode());
  // feed() changes state inside a closure, which TypeScript's narrowing cannot see
  state = state as State;
  if (state === 'quoted') {
    error ??= 'a quoted field is never closed';
    state = 'skip-to-eol';
  }
  if (state === 'unquoted' || state === 'quote-in-quoted' || (state === 'field-start' && fields.length > 0)) {
    endField();
  }
  endRecord();
  while (out.length > 0) {
    yield out.shift()!;
  }
}

/** Index of the first comma, line break or quote at or after `from` (the end of an unquoted run), or text.length. */
function endOfUnquotedRun(text: string, from: number): number {
  let j = from;
  while (j < text.length) {
    const d = text.charCodeAt(j);
    if (d === COMMA || d === LF || d === CR || d === QUOTE) {
      return j;
    }
    j++;
  }
  return j;
}
