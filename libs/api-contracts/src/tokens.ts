/**
 * The operator tokens surface (POST/GET /v1/tokens, DELETE /v1/tokens/:id) and the scopes every
 * operator route requires. libs/api-tokens issues, checks and implies scopes with these names.
 */

/**
 * What an operator token may do, with the words `token create --help` and the OpenAPI show. Kept
 * small and coarse: an operator of a fleet grants "can import inventory", not per-field rights.
 */
export const SCOPES = {
  admin: 'every operation, including managing tokens',
  'audit:read': 'read and verify the audit log',
  'vendor-ca:read': 'list trusted TPM vendor CAs',
  'vendor-ca:write': 'add, disable, enable and pin TPM vendor CAs (implies vendor-ca:read)',
  'inventory:read': 'list machines and imports',
  'inventory:write': 'import inventory CSV files, revoke machines (implies inventory:read)',
  'policy:read': 'show group PCR policies',
  'policy:write': 'set, promote into and remove group PCR policies (implies policy:read)',
  'secrets:read': 'list and show secrets (metadata only, never material) and the cluster CAs, download CA certificates',
  'secrets:write': 'create and rotate secrets, import cluster CAs (implies secrets:read)',
} as const;

export type Scope = keyof typeof SCOPES;

export const ALL_SCOPES = Object.keys(SCOPES) as Scope[];

/**
 * Scopes a held scope grants besides itself. A writer must be able to read back what it just wrote
 * (list the CAs it added, read the report of the import it ran): a `write` without its `read` only
 * makes operators issue two scopes every time. `admin` is handled apart: it implies everything.
 * Declared here so the server's guard and the dashboard's gating decide alike.
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

/** Whether holding `held` allows an operation that needs `needed`. */
export function grants(held: readonly string[], needed: Scope): boolean {
  return held.some((scope) => scope === 'admin' || scope === needed || (isScope(scope) && (IMPLIED_SCOPES[scope]?.includes(needed) ?? false)));
}

/** The longest token name (1 to this many characters, not blank, printable). */
export const TOKEN_NAME_MAX_LENGTH = 100;

/** POST /v1/tokens. */
export interface CreateTokenRequest {
  readonly name: string;
  readonly scopes: readonly Scope[];
}

/** POST /v1/tokens: the token itself is in this answer only (the server keeps its SHA-256). */
export interface IssuedToken {
  readonly id: string;
  readonly token: string;
  readonly name: string;
  readonly scopes: readonly Scope[];
}

/** GET /v1/tokens: one token, without its secret. Instants are ISO 8601 on the wire. */
export interface TokenSummary<Time = string> {
  readonly id: string;
  readonly name: string;
  readonly scopes: readonly string[];
  readonly createdAt: Time;
  readonly createdBy: string;
  readonly revokedAt: Time | null;
  readonly lastUsedAt: Time | null;
}
