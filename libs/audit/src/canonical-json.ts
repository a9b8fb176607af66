/** Thrown when a value cannot be part of an audit record's hashed content. */
export class AuditDetailsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditDetailsError';
  }
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/**
 * Field names that look like they hold a secret. Audit details are read by many people and kept
 * forever, so a record carrying such a field is refused instead of stored.
 */
const SECRET_LOOKING_KEY = /(secret|password|passphrase|privatekey|private_key|masterkey|master_key|^token$|^key$)/i;

/**
 * Serializes JSON with object keys sorted at every depth, so equal content always hashes equally,
 * also after a round trip through PostgreSQL jsonb (which reorders keys). Refuses anything jsonb
 * would not give back unchanged: undefined, functions, non-finite numbers, class instances.
 */
export function canonicalJson(value: unknown, path = 'details'): string {
  if (value === null) {
    return 'null';
  }
  switch (typeof value) {
    case 'boolean':
      return value ? 'true' : 'false';
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isFinite(value)) {
        throw new AuditDetailsError(`${path} is not a finite number`);
      }
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((item, i) => canonicalJson(item, `${path}[${i}]`)).join(',')}]`;
      }
      const prototype = Object.getPrototypeOf(value) as unknown;
      if (prototype !== Object.prototype && prototype !== null) {
        throw new AuditDetailsError(`${path} must be plain JSON, not a ${value.constructor.name}`);
      }
      const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries
        .map(([key, item]) => {
          if (SECRET_LOOKING_KEY.test(key)) {
            throw new AuditDetailsError(`${path}.${key} looks like a secret; audit records never carry secrets`);
          }
          return `${JSON.stringify(key)}:${canonicalJson(item, `${path}.${key}`)}`;
        })
        .join(',')}}`;
    }
    default:
      throw new AuditDetailsError(`${path} has type ${typeof value}, which is not JSON`);
  }
}
