/**
 * What an operator token may do: the names (SCOPES, ALL_SCOPES), what each implies (IMPLIED_SCOPES)
 * and the check (grants) are part of the operator API and declared in its contract, so the
 * dashboard gates its controls by the same rule the guard enforces. Scopes are checked per
 * endpoint; `admin` implies every scope, and each `X:write` implies `X:read`.
 */
export { ALL_SCOPES, grants, IMPLIED_SCOPES, isScope, type Scope, SCOPES } from '@rackseal/api-contracts';
