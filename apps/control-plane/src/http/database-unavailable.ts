import { QueryRunnerAlreadyReleasedError, QueryRunnerProviderAlreadyReleasedError } from 'typeorm';

/** Seconds a client is told to wait (Retry-After) when the database cannot take the request now. */
export const DATABASE_RETRY_AFTER_SECONDS = 2;

// pg-pool's message when no connection frees up within connectionTimeoutMillis (libs/persistence),
// and pg's when a new connection cannot be made or is cut.
const UNAVAILABLE_MESSAGES = [
  'timeout exceeded when trying to connect',
  'Connection terminated due to connection timeout',
  'Connection terminated unexpectedly',
  'Connection terminated',
  // A client whose socket failed, used again (a transaction's ROLLBACK after its COMMIT was cut).
  'Client has encountered a connection error and is not queryable',
  'Client was closed and is not queryable',
];

// Socket errors of a connection the server dropped (an immediate shutdown resets it mid-query).
const UNAVAILABLE_SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ECONNABORTED', 'ENOTCONN']);

// SQLSTATE (PostgreSQL manual, Appendix A): 08 connection exception, 53 insufficient resources
// (53300 too_many_connections), 57P01-57P03 admin/crash shutdown and cannot_connect_now.
const UNAVAILABLE_SQLSTATE = /^(08...|53...|57P0[123])$/;

/**
 * Whether an error means "the database cannot serve this request now" (pool exhausted, server
 * unreachable, restarting, out of connections): the client should retry, so this is a 503 with
 * Retry-After, not a 500. TypeORM passes pool errors through as they are and wraps query errors
 * in QueryFailedError with the pg error as `driverError`.
 *
 * A transaction whose connection is cut *between* two of its queries fails with a TypeORM error,
 * not a pg one: TypeORM's PostgreSQL query runner releases itself on its client's `error` event
 * (the server's FATAL 57P01 or a reset socket), and the transaction's next query finds it released
 * — QueryRunnerAlreadyReleasedError through a query builder or repository,
 * QueryRunnerProviderAlreadyReleasedError through the manager's `query` or `transaction`. Nothing
 * in rackseal keeps a query runner or its manager past its transaction, so either means a lost
 * connection (test/database-outage-errors.test.ts makes both with pg_terminate_backend).
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) {
    return false;
  }
  if (error instanceof QueryRunnerAlreadyReleasedError || error instanceof QueryRunnerProviderAlreadyReleasedError) {
    return true;
  }
  const driverError = (error as { driverError?: unknown }).driverError;
  const code = (driverError as { code?: unknown } | undefined)?.code ?? (error as { code?: unknown }).code;
  if (typeof code === 'string' && (UNAVAILABLE_SQLSTATE.test(code) || UNAVAILABLE_SOCKET_CODES.has(code))) {
    return true;
  }
  const driverMessage = (driverError as { message?: unknown } | undefined)?.message;
  return UNAVAILABLE_MESSAGES.includes(error.message) || (typeof driverMessage === 'string' && UNAVAILABLE_MESSAGES.includes(driverMessage));
}
