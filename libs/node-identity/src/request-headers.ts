import { NodeRequestRefusal } from './node-identity-errors';

/**
 * A request's headers as Node gives them: `req.headers` (names lower-cased; Node keeps only the
 * first of duplicate Authorization headers) or `req.rawHeaders` (name, value, name, value, …; every
 * header as received, so duplicates show).
 */
export type NodeRequestHeaders = Readonly<Record<string, string | readonly string[] | undefined>> | readonly string[];

/** The one value of header `name` (lower-case), undefined when absent; given twice is `malformed`. */
export function singleHeader(headers: NodeRequestHeaders, name: string): string | undefined {
  const values: unknown[] = [];
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (typeof headers[i] === 'string' && (headers[i] as string).toLowerCase() === name) {
        values.push(headers[i + 1]);
      }
    }
  } else {
    for (const [key, value] of Object.entries(headers)) {
      if (key.toLowerCase() === name && value !== undefined) {
        values.push(...(Array.isArray(value) ? value : [value]));
      }
    }
  }
  if (values.length > 1) {
    throw new NodeRequestRefusal('malformed', `the ${name} header is given more than once`);
  }
  const [value] = values;
  if (value !== undefined && typeof value !== 'string') {
    throw new NodeRequestRefusal('malformed', `the ${name} header is not text`);
  }
  return value;
}
