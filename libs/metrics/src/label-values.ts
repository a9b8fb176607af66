/**
 * Label values with a fixed, small set of values, so no caller-controlled text becomes a series
 * (Prometheus keeps one series per label combination: a raw path or an id would grow it without bound).
 */

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** The HTTP method, or `OTHER` for anything a client invented. */
export function methodLabel(method: string | undefined): string {
  return method !== undefined && METHODS.has(method) ? method : 'OTHER';
}

/** `2xx` … `5xx` (RFC 9110 §15: the first digit is the class); `other` outside 100-599. */
export function statusClassLabel(status: number): string {
  return Number.isInteger(status) && status >= 100 && status <= 599 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** The route label of a request that matched no route (404s of unknown paths, refusals before routing). */
export const UNMATCHED_ROUTE = '(unmatched)';
