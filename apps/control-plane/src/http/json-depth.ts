import { isUtf8 } from 'node:buffer';

/** No operator request nests deeper than a few levels; 32 leaves room for any future body. */
export const MAX_JSON_DEPTH = 32;

/** body-parser's error `type` for a body refused by refuseDeepJson (mapped to a 400 by the exception filter). */
export const JSON_TOO_DEEP = 'entity.too.deep';

/** body-parser's error `type` for a body refused by refuseDeepJson because its bytes are not UTF-8. */
export const JSON_NOT_UTF8 = 'entity.not.utf8';

/**
 * body-parser `verify` hook: refuses a JSON body that is not UTF-8 (RFC 8259 §8.1; body-parser
 * would take UTF-16/32) or whose bytes are not UTF-8 (body-parser would decode them to U+FFFD and
 * store that, where the CSV import refuses such bytes), and one nesting arrays/objects deeper than MAX_JSON_DEPTH, before it is parsed. JSON.parse copes with 100,000 levels, but everything after it recurses
 * (ValidationPipe's prototype-key stripping, class-transformer, class-validator) and overflows the
 * stack. One pass over the bytes, counting brackets outside strings (RFC 8259 §7: inside a string a
 * `"` is escaped by a backslash, and a backslash escapes exactly the next character).
 */
export function refuseDeepJson(_request: unknown, _response: unknown, body: Buffer, encoding: string | null): void {
  if (encoding !== null && encoding.toLowerCase() !== 'utf-8') {
    throw Object.assign(new Error('JSON must be UTF-8'), { status: 415, type: 'charset.unsupported' });
  }
  if (!isUtf8(body)) {
    throw Object.assign(new Error('JSON bytes are not UTF-8'), { status: 400, type: JSON_NOT_UTF8 });
  }
  // In UTF-8 the bytes scanned for below never occur inside a multi-byte sequence (all ≥ 0x80).
  let depth = 0;
  let inString = false;
  for (let i = 0; i < body.length; i++) {
    const byte = body[i]!;
    if (inString) {
      if (byte === 0x5c /* \ */) {
        i++;
      } else if (byte === 0x22 /* " */) {
        inString = false;
      }
    } else if (byte === 0x22) {
      inString = true;
    } else if (byte === 0x5b /* [ */ || byte === 0x7b /* { */) {
      if (++depth > MAX_JSON_DEPTH) {
        // body-parser keeps `status` and `type` of what verify throws (http-errors): a 400, not its default 403.
        throw Object.assign(new Error(`JSON nests deeper than ${MAX_JSON_DEPTH} levels`), { status: 400, type: JSON_TOO_DEEP });
      }
    } else if (byte === 0x5d /* ] */ || byte === 0x7d /* } */) {
      depth--;
    }
  }
}
