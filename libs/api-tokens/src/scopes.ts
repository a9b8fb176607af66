/**
 * What an operator token may do. Scopes are checked per endpoint; `admin` implies every scope, and
 * each `X:write` implies `X:read` (IMPLIED_SCOPES). Kept small and coarse: an operator of a fleet
 * grants "can import inventory", not per-field rights.
 */
export const SCOPES = {
  admin: 'every operation, including managing tokens',
  'audit:read': 'read and verify the audit log',
  'vendor-ca:read': 'list trusted TPM vendor CAs',
  'vendor-ca:write': 'add, disable, enable and pin TPM vendor CAs (implies vendor-ca:read)',
  'inventory:read': 'list machines and imports',
  'inventory:write': 'import inventory CSV files, revoke machines (implies inventory:read)',
  'policy:write': 'set and approve group boot policies',
  'secrets:write': 'create and rotate secrets',
} as const;

export type Scope = keyof typeof SCOPES;

export const ALL_SCOPES = Object.keys(SCOPES) as Scope[];

/**
 * Scopes a held scope grants besides itself. A writer must be able to read back what it just wrote
 * (list the CAs it added, read the report of the import it ran): a `write` without its `read` only
 * makes operators issue two scopes every time. `admin` is handled apart: it implies everything.
 */
export const IMPLIED_SCOPES: Readonly<Partial<Record<Scope, readonly Scope[]>>> = {
  'vendor-ca:write': ['vendor-ca:read'],
  'inventory:write': ['inventory:read'],
};

/** Own keys only: `'constructor' in SCOPES` is true, and such a name must not pass as a scope. */
export function isScope(value: string): value is Scope {
  return Object.hasOwn(SCOPES, value);
}

export function grants(held: readonly string[], needed: Scope): boolean {
  return held.some((scope) => scope === 'admin' || scope === needed || (isScope(scope) && (IMPLIED_SCOPES[scope]?.includes(needed) ?? false)));
}
