import { QueryRunnerAlreadyReleasedError, QueryRunnerProviderAlreadyReleasedError } from 'typeorm';
import { isDatabaseUnavailable } from './database-unavailable';

/** An error as pg or node:net makes it: a message and a code. */
const pgError = (message: string, code?: string): Error => Object.assign(new Error(message), code === undefined ? {} : { code });
/** TypeORM's QueryFailedError: the driver's error as `driverError`, its message copied. */
const queryFailed = (driverError: Error): Error => Object.assign(new Error(driverError.message), { driverError });

describe('isDatabaseUnavailable', () => {
  it.each([
    ['pool exhausted', pgError('timeout exceeded when trying to connect')],
    ['server unreachable', pgError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')],
    ['a connection reset mid-query (immediate shutdown)', queryFailed(pgError('read ECONNRESET', 'ECONNRESET'))],
    ['a write to a dropped connection', pgError('write EPIPE', 'EPIPE')],
    ['a connection cut', queryFailed(pgError('Connection terminated unexpectedly'))],
    ['a client reused after its connection failed', pgError('Client has encountered a connection error and is not queryable')],
    ['the server shutting down (57P01)', queryFailed(pgError('terminating connection due to administrator command', '57P01'))],
    ['the server starting up (57P03)', queryFailed(pgError('the database system is starting up', '57P03'))],
    ['too many connections (53300)', queryFailed(pgError('sorry, too many clients already', '53300'))],
    ['a transaction whose connection was cut between two queries: a query builder on the released runner', new QueryRunnerAlreadyReleasedError()],
    ['a transaction whose connection was cut between two queries: the manager\'s query on the released runner', new QueryRunnerProviderAlreadyReleasedError()],
  ])('%s: a 503, the client retries', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(true);
  });

  it.each([
    ['a unique violation (23505)', queryFailed(pgError('duplicate key value violates unique constraint', '23505'))],
    ['a syntax error (42601)', queryFailed(pgError('syntax error at or near', '42601'))],
    ['a programming error', new TypeError('x is undefined')],
    ['not an Error', 'Connection terminated'],
  ])('%s: not "unavailable" (a 500 with an error id)', (_what, error) => {
    expect(isDatabaseUnavailable(error)).toBe(false);
  });
});
