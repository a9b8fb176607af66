/**
 * What an operator token may do. Scopes are checked per endpoint; `admin` implies every scope.
 * Kept small and coarse: an operator of a fleet grants "can import inventory", not per-field rights.
 */
export const SCOPES = {
  admin: 'every operation, including managing tokens',
  'audit:read': 'read and verify the audit log',
  'vendor-ca:read': 'list trusted TPM vendor CAs',
  'vendor-ca:write': 'add, disable and enable TPM vendor CAs',
  'inventory:read': 'list machines and imports',
  'inventory:write': 'import inventory CSV files, revoke machines',
  'policy:write': 'set and approve group boot policies',
  'secrets:write': 'create and rotate secrets',
} as const;

export type Scope = keyof typeof SCOPES;

export const ALL_SCOPES = Object.keys(SCOPES) as Scope[];

export function isScope(value: string): value is Scope {
  return value in SCOPES;
}

export function grants(held: readonly string[], needed: Scope): boolean {
  return held.includes('admin') || held.includes(needed);
}
