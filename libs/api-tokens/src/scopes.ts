import { type Scope, SCOPES } from '@rackseal/api-contracts';

/**
 * What an operator token may do: the names (SCOPES, ALL_SCOPES) are part of the operator API and
 * declared in its contract. Scopes are checked per endpoint; `admin` implies every scope, and each
 * `X:write` implies `X:read` (IMPLIED_SCOPES).
 */
export { ALL_SCOPES, type Scope, SCOPES } from '@rackseal/api-contracts';

/**
 * Scopes a held scope grants besides itself. A writer must be able to read back what it just wrote
 * (list the CAs it added, read the report of the import it ran): a `write` without its `read` only
 * makes operators issue two scopes every time. `admin` is handled apart: it implies everything.
 */
export const IMPLIED_SCOPES: Readonly<Partial<Record<Scope, readonly Scope[]>>> = {
  'vendor-ca:write': ['vendor-ca:read'],
  'inventory:write': ['inventory:read'],
  'policy:write': ['policy:read'],
  'secrets:write': ['secrets:read'],
};

/** Own keys only: `'constructor' in SCOPES` is true, and such a name must not pass as a scope. */
export function isScope(value: string): value is Scope {
  return Object.hasOwn(SCOPES, value);
}

export function grants(held: readonly string[], needed: Scope): boolean {
  return held.some((scope) => scope === 'admin' || scope === needed || (isScope(scope) && (IMPLIED_SCOPES[scope]?.includes(needed) ?? false)));
}
