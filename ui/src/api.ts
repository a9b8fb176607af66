import { CSRF_HEADER } from '@rackseal/api-contracts';

/** A refusal of the operator API: its status and stable code (the message is for people). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
  }
}

let csrfToken: string | undefined;

/** The session's CSRF token, sent with every state change (the server checks it against the cookie). */
export function useCsrfToken(token: string | undefined): void {
  csrfToken = token;
}

/**
 * One call to the operator API, with the session cookie (same origin) and, for a state change, the
 * CSRF header. The dashboard talks to nothing else.
 */
export async function api<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
  }
  if (method !== 'GET' && csrfToken !== undefined) {
    headers[CSRF_HEADER] = csrfToken;
  }
  const response = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const parsed: unknown = text.length > 0 && (response.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : undefined;
  if (!response.ok) {
    const error = (parsed ?? {}) as { code?: string; message?: string | string[] };
    const message = Array.isArray(error.message) ? error.message.join('; ') : (error.message ?? `${response.status} ${response.statusText}`);
    throw new ApiError(response.status, error.code, message);
  }
  return parsed as T;
}

/** A path segment, encoded (serials and group names are the operator's own words). */
export const segment = encodeURIComponent;
