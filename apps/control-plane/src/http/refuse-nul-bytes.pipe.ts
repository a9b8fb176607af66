import { type ArgumentMetadata, BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';

const CHECKED: ReadonlySet<ArgumentMetadata['type']> = new Set(['body', 'query', 'param']);
const MAX_REPORTED = 20;
/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const UNPAIRED_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Property names ValidationPipe deletes from every object it is given (its prototype-pollution guard,
 * stripProtoKeys) before a handler sees it: a key so named would vanish from the request without a
 * word — a runtime policy's allowlist entry `{"digests": {"__proto__": […]}}` stored without it.
 */
const DROPPED_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/** What is wrong with a string, or null: U+0000, or a UTF-16 surrogate without its pair. */
function problemOf(value: string): string | null {
  if (value.includes('\0')) {
    return 'must not contain NUL bytes';
  }
  if (UNPAIRED_SURROGATE.test(value)) {
    return 'must be well-formed Unicode (it holds an unpaired surrogate)';
  }
  return null;
}

/**
 * Refuses a NUL byte or an unpaired surrogate in any string (or key) of a route's path parameters,
 * query and body, and a key ValidationPipe would silently delete (DROPPED_KEYS), naming where it is. PostgreSQL text cannot hold U+0000, and jsonb refuses a lone
 * surrogate (`"\ud800"` is valid JSON, so JSON.parse lets it through and JSON.stringify writes it
 * back as such for the audit record's details), so either would otherwise reach the database and
 * come back as a 500. This is the guard for every route, present and future; DTOs refuse control
 * characters on their own as well. Runs before ValidationPipe. Nesting is already bounded by the
 * JSON depth limit, and the walk uses its own stack anyway.
 */
@Injectable()
export class RefuseNulBytesPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (!CHECKED.has(metadata.type)) {
      return value;
    }
    const found = badStrings(value, metadata.data ?? '');
    if (found.length > 0) {
      const messages = found.slice(0, MAX_REPORTED).map(({ path, problem }) => `${path === '' ? metadata.type : path} ${problem}`);
      throw new BadRequestException(messages);
    }
    return value;
  }
}

/** Dotted paths (class-validator style: `files.0.name`) of the strings and keys that problemOf refuses. */
function badStrings(root: unknown, rootPath: string): { path: string; problem: string }[] {
  const found: { path: string; problem: string }[] = [];
  const stack: [unknown, string][] = [[root, rootPath]];
  while (stack.length > 0 && found.length <= MAX_REPORTED) {
    const [value, path] = stack.pop()!;
    if (typeof value === 'string') {
      const problem = problemOf(value);
      if (problem !== null) {
        found.push({ path, problem });
      }
    } else if (typeof value === 'object' && value !== null) {
      const entries = Object.entries(value as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        const problem = DROPPED_KEYS.has(key) ? `must not be ${JSON.stringify(key)} (a name the request pipeline would drop: refused rather than lost)` : problemOf(key);
        if (problem !== null) {
          found.push({ path: path === '' ? 'a property name' : `a property name in ${path}`, problem });
        } else {
          stack.push([child, path === '' ? key : `${path}.${key}`]);
        }
      }
    }
  }
  return found;
}
