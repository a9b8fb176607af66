/**
 * Domain errors with stable codes (docs/architecture.md §10). A library refuses by
 * throwing a DomainError whose `code` (`<area>.<what>`, e.g. `vendor-ca.not-found`) is part of the
 * API: clients branch on it, never on the message. The library declares each code once with its
 * kind in a `*_ERROR_CODES` table; the control plane's one exception filter maps kinds to HTTP
 * statuses, so a library never knows about HTTP and a controller never maps an error by hand.
 */

/** What kind of refusal a code is; each kind has exactly one HTTP status (the control plane's filter). */
export const ERROR_KINDS = ['invalid', 'unauthenticated', 'not-found', 'conflict', 'too-large', 'timeout', 'unavailable'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** A library's codes and their kinds: `{ 'vendor-ca.not-found': 'not-found', … }`. */
export type ErrorCodeTable = Readonly<Record<string, ErrorKind>>;

/** Codes are lowercase `area.what` words joined by hyphens: stable identifiers, safe in logs and URLs. */
export const ERROR_CODE_PATTERN = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;

export interface DomainErrorOptions {
  readonly cause?: unknown;
  /** For `unavailable`: when the same request may succeed (sent as Retry-After, RFC 9110 §10.2.3). */
  readonly retryAfterSeconds?: number;
}

export class DomainError extends Error {
  readonly retryAfterSeconds?: number;

  constructor(
    readonly code: string,
    readonly kind: ErrorKind,
    message: string,
    options: DomainErrorOptions = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DomainError';
    if (options.retryAfterSeconds !== undefined) {
      this.retryAfterSeconds = options.retryAfterSeconds;
    }
  }

  /** What the client is told: the message, or a list of problems (see InventoryInputError). */
  publicMessage(): string | readonly string[] {
    return this.message;
  }
}

/**
 * The base class of one library's refusals: `code` is typed to that library's table and the kind is
 * looked up in it, so a library declares its codes once and cannot throw a code it did not declare.
 * `export class MachineError extends domainErrorFor(MACHINE_ERROR_CODES) {}`
 */
export function domainErrorFor<T extends ErrorCodeTable>(table: T) {
  return class extends DomainError {
    constructor(
      override readonly code: keyof T & string,
      message: string,
      options?: DomainErrorOptions,
    ) {
      super(code, table[code]!, message, options);
    }
  };
}

/**
 * Codes of refusals that come from no library: request validation, authentication, routing and the
 * server itself. The control plane's filter gives them by HTTP status.
 */
export const GENERIC_ERROR_CODES = {
  'request.invalid': 'the request is malformed or fails validation (400)',
  'auth.unauthenticated': 'no valid operator token (401)',
  'auth.forbidden': 'the token lacks the scope the operation needs (403)',
  'route.not-found': 'no such route (404)',
  'request.timeout': 'the request was not sent in time (408)',
  'request.conflict': 'the request conflicts with the current state (409)',
  'request.too-large': 'the request body is larger than allowed (413)',
  'request.unsupported-media-type': 'the request body has a Content-Type the route does not take (415)',
  'request.rate-limited': 'too many requests from this client address or credential; retry after Retry-After (429)',
  'request.refused': 'any other client error (4xx)',
  'database.unavailable': 'the database cannot take the request now; retry after Retry-After (503)',
  'service.unavailable': 'the service cannot take the request now (503)',
  internal: 'an unexpected error; the body carries an errorId to quote (500)',
} as const;
export type GenericErrorCode = keyof typeof GENERIC_ERROR_CODES;
