import { refuseDeepJson } from './json-depth';

/** body-parser's error `type` for a JSON body that is not an object (mapped to a 400 by the exception filter). */
export const JSON_NOT_OBJECT = 'entity.not.object';

/** RFC 8259 §2: insignificant whitespace. */
const JSON_WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

/** The first bytes of a JSON value that is not an object (RFC 8259 §3): array, string, number, true, false, null. */
const NOT_OBJECT_START = new Set([...'["-0123456789tfn'].map((c) => c.charCodeAt(0)));

/**
 * body-parser `verify` hook: every JSON body the API takes is an object, so a body that is valid
 * JSON of another kind (`null`, `[]`, `"x"`, `42`) is refused as that — body-parser's strict mode
 * would call it "not valid JSON" (it is), and an array would reach the DTO validation, which has
 * nothing to say about it. Anything else not starting an object is left to the parser's own
 * refusal. An empty body is no body.
 */
export function refuseNonObjectJson(body: Buffer): void {
  let i = 0;
  while (i < body.length && JSON_WHITESPACE.has(body[i]!)) {
    i++;
  }
  if (i < body.length && NOT_OBJECT_START.has(body[i]!)) {
    throw Object.assign(new Error('the request body must be a JSON object'), { status: 400, type: JSON_NOT_OBJECT });
  }
}

/** The `verify` hook of every JSON body parser: UTF-8, nesting depth (json-depth.ts), then an object. */
export function checkJsonBody(request: unknown, response: unknown, body: Buffer, encoding: string | null): void {
  refuseDeepJson(request, response, body, encoding);
  refuseNonObjectJson(body);
}
