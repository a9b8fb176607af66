import { type ArgumentMetadata, BadRequestException, Injectable, type PipeTransform } from '@nestjs/common';

const CHECKED: ReadonlySet<ArgumentMetadata['type']> = new Set(['body', 'query', 'param']);
const MAX_REPORTED = 20;

/**
 * Refuses a NUL byte in any string (or key) of a route's path parameters, query and body, naming
 * where it is. PostgreSQL text cannot hold U+0000, so such a value would otherwise reach the
 * driver and come back as a 500 ("invalid byte sequence for encoding UTF8: 0x00"). This is the
 * guard for every route, present and future; DTOs refuse control characters on their own as well.
 * Runs before ValidationPipe. Nesting is already bounded by the JSON depth limit, and the walk
 * uses its own stack anyway.
 */
@Injectable()
export class RefuseNulBytesPipe implements PipeTransform {
  transform(value: unknown, metadata: ArgumentMetadata): unknown {
    if (!CHECKED.has(metadata.type)) {
      return value;
    }
    const found = pathsWithNul(value, metadata.data ?? '');
    if (found.length > 0) {
      const messages = found.slice(0, MAX_REPORTED).map((path) => `${path === '' ? metadata.type : path} must not contain NUL bytes`);
      throw new BadRequestException(messages);
    }
    return value;
  }
}

/** Dotted paths (class-validator style: `files.0.name`) of the strings and keys that contain U+0000. */
function pathsWithNul(root: unknown, rootPath: string): string[] {
  const found: string[] = [];
  const stack: [unknown, string][] = [[root, rootPath]];
  while (stack.length > 0 && found.length <= MAX_REPORTED) {
    const [value, path] = stack.pop()!;
    if (typeof value === 'string') {
      if (value.includes('\0')) {
        found.push(path);
      }
    } else if (typeof value === 'object' && value !== null) {
      const entries = Object.entries(value as Record<string, unknown>);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i]!;
        if (key.includes('\0')) {
          found.push(path === '' ? 'a property name' : `a property name in ${path}`);
        } else {
          stack.push([child, path === '' ? key : `${path}.${key}`]);
        }
      }
    }
  }
  return found;
}
