/**
 * A streaming RFC 4180 reader: records come out as the bytes come in, so memory is bounded by the
 * longest record, never by the file. Handles a UTF-8 BOM, CRLF / LF / lone CR line ends, quoted
 * fields with `""` escapes and embedded line breaks. Every record carries the physical line it
 * starts on (1-based, counting the header), which is what an operator sees in an editor.
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

/** A problem that makes the whole input unreadable (a record larger than the limit). */
export class CsvLimitError extends Error {
  constructor(
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = 'CsvLimitError';
  }
}

export interface CsvReaderOptions {
  /** Largest record, in characters; a longer one ends the read with CsvLimitError. Default 1 MiB. */
  readonly maxRecordChars?: number;
}

const QUOTE = 0x22;
const COMMA = 0x2c;
const CR = 0x0d;
const LF = 0x0a;

type State = 'field-start' | 'unquoted' | 'quoted' | 'quote-in-quoted' | 'skip-to-eol';

export async function* readCsv(source: AsyncIterable<Uint8Array | string>, options: CsvReaderOptions = {}): AsyncGenerator<CsvRecord> {
  const maxChars = options.maxRecordChars ?? 1024 * 1024;
  const decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: false });
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
            let j = i + 1;
            while (j < text.length) {
              const d = text.charCodeAt(j);
              if (d === COMMA || d === LF || d === CR || d === QUOTE) {
                break;
              }
              j++;
            }
            field += text.slice(start, j);
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
            let j = i + 1;
            while (j < text.length) {
              const d = text.charCodeAt(j);
              if (d === COMMA || d === LF || d === CR || d === QUOTE) {
                break;
              }
              j++;
            }
            field += text.slice(i, j);
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
      if (recordChars > maxChars || field.length > maxChars) {
        throw new CsvLimitError(recordLine, `line ${recordLine}: record longer than ${maxChars} characters`);
      }
    }
  };

  for await (const chunk of source) {
    feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    // yield what this chunk completed
    while (out.length > 0) {
      yield out.shift()!;
    }
  }
  feed(decoder.decode());
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
