import { BadRequestException, ForbiddenException, Logger, NotFoundException, UnauthorizedException, type ArgumentsHost } from '@nestjs/common';
import { DomainError, ERROR_KINDS, type ErrorKind } from '@rackseal/api-contracts';
import { InvalidTokenNameError, TokenNotFoundError } from '@rackseal/api-tokens';
import { InventoryBusyError, InventoryInputError, InventoryTooLargeError, RowCheckerCrashError, UploadIdleTimeoutError } from '@rackseal/inventory';
import { MachineNotFoundError, MachineStateConflictError, MachineTransitionError } from '@rackseal/machines';
import { VendorCaAmbiguousRefError, VendorCaNotFoundError } from '@rackseal/vendor-cas';
import { AllExceptionsFilter } from './all-exceptions.filter';
import { DOMAIN_ERROR_CODES, KIND_STATUS } from './error-codes';

/** Runs the filter on one exception against a recording request/response pair. */
function answer(exception: unknown) {
  const headers: Record<string, string> = {};
  const finish: Array<() => void> = [];
  let status = 0;
  let body: Record<string, unknown> = {};
  let destroyed = false;
  const response = {
    headersSent: false,
    setHeader: (name: string, value: string) => void (headers[name.toLowerCase()] = value),
    status(code: number) {
      status = code;
      return this;
    },
    json(value: Record<string, unknown>) {
      body = value;
      return this;
    },
    once(event: string, listener: () => void) {
      if (event === 'finish') {
        finish.push(listener);
      }
      return this;
    },
  };
  const request = { id: 'req-1', method: 'POST', originalUrl: '/v1/x', destroy: () => void (destroyed = true) };
  const host = { switchToHttp: () => ({ getRequest: () => request, getResponse: () => response }) } as unknown as ArgumentsHost;
  new AllExceptionsFilter().catch(exception, host);
  return { status, body, headers, finishResponse: () => finish.forEach((listener) => listener()), destroyed: () => destroyed };
}

describe('AllExceptionsFilter: domain errors by kind', () => {
  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });
  afterEach(() => jest.restoreAllMocks());

  const expected: Record<ErrorKind, number> = { invalid: 400, unauthenticated: 401, 'not-found': 404, conflict: 409, 'too-large': 413, timeout: 408, unavailable: 503 };

  it('gives every kind exactly the status the README promises', () => {
    expect(KIND_STATUS).toEqual(expected);
    expect(Object.keys(KIND_STATUS).sort()).toEqual([...ERROR_KINDS].sort());
  });

  it.each([
    ['invalid', new InvalidTokenNameError('token name must not be empty'), 400, 'Bad Request', 'token.invalid-name', 'token name must not be empty'],
    ['not-found', new VendorCaNotFoundError('abcdef12'), 404, 'Not Found', 'vendor-ca.not-found', 'no vendor CA "abcdef12"'],
    ['not-found', new MachineNotFoundError('m-1'), 404, 'Not Found', 'machine.not-found', 'no machine m-1'],
    ['not-found', new TokenNotFoundError('t-1'), 404, 'Not Found', 'token.not-found', 'no active token t-1'],
    ['conflict', new VendorCaAmbiguousRefError('abcdef12', ['ABCDEF12:01', 'ABCDEF12:02'], false), 409, 'Conflict', 'vendor-ca.ambiguous-prefix', 'fingerprint prefix abcdef12 is ambiguous: it matches ABCDEF12:01, ABCDEF12:02; give more digits'],
    ['conflict', new MachineTransitionError('imported', 'revoked'), 409, 'Conflict', 'machine.illegal-transition', 'a machine cannot go from imported to revoked'],
    ['conflict', new MachineStateConflictError('m-1', 'imported', 'attested', 'attesting'), 409, 'Conflict', 'machine.state-conflict', 'machine m-1 is attested, not imported: it was not moved to attesting'],
    ['too-large', new InventoryTooLargeError(7, 100), 413, 'Payload Too Large', 'inventory.too-large', 'line 7: the file is larger than 100 bytes (INVENTORY_MAX_FILE_BYTES); nothing was imported'],
    ['timeout', new UploadIdleTimeoutError(500), 408, 'Request Timeout', 'inventory.upload-idle', 'the upload sent no data for 500 ms (INVENTORY_UPLOAD_IDLE_TIMEOUT_MS); nothing was imported'],
    ['unavailable', new InventoryBusyError(3), 503, 'Service Unavailable', 'inventory.busy', '3 inventory import(s) are already running on this control plane (INVENTORY_MAX_CONCURRENT_IMPORTS); retry shortly'],
  ] as const)('%s: %p is a %i with its code and message', (kind, error, status, reason, code, message) => {
    expect(error.kind).toBe(kind);
    const { status: sent, body } = answer(error);
    expect(sent).toBe(status);
    expect(body).toEqual({ statusCode: status, error: reason, code, message, requestId: 'req-1' });
  });

  it('covers every kind with at least one registered code', () => {
    expect(new Set(Object.values(DOMAIN_ERROR_CODES))).toEqual(new Set(ERROR_KINDS));
  });

  it('unavailable: sends the Retry-After the error carries (busy 5 s, a replaced row-check thread 1 s)', () => {
    expect(answer(new InventoryBusyError(3)).headers['retry-after']).toBe('5');
    const crash = answer(new RowCheckerCrashError(new Error('out of memory')));
    expect(crash.status).toBe(503);
    expect(crash.body.code).toBe('inventory.row-checker-crashed');
    expect(crash.headers['retry-after']).toBe('1');
  });

  it('timeout: answers with Connection: close and closes the connection once the answer is out', () => {
    const stalled = answer(new UploadIdleTimeoutError(500));
    expect(stalled.headers.connection).toBe('close');
    expect(stalled.destroyed()).toBe(false);
    stalled.finishResponse();
    expect(stalled.destroyed()).toBe(true);
    // No other kind closes the connection.
    expect(answer(new InventoryBusyError(1)).headers.connection).toBeUndefined();
  });

  it('invalid: a header with several problems answers one message per problem', () => {
    const { status, body } = answer(new InventoryInputError('bad header', ['unknown column "x"', 'missing column "serial"']));
    expect(status).toBe(400);
    expect(body).toMatchObject({ code: 'inventory.invalid-file', message: ['unknown column "x"', 'missing column "serial"'] });
    expect(answer(new InventoryInputError('line 2: record too long')).body.message).toBe('line 2: record too long');
  });

  it('refuses to guess: a DomainError whose code is not in the table is a logged 500 that does not echo it', () => {
    const { status, body, headers } = answer(new DomainError('made.up', 'unavailable', 'secret detail', { retryAfterSeconds: 9 }));
    expect(status).toBe(500);
    expect(body).toEqual({ statusCode: 500, error: 'Internal Server Error', code: 'internal', message: 'internal error; quote the errorId to your operator', requestId: 'req-1', errorId: expect.any(String) });
    expect(headers['retry-after']).toBeUndefined();
    expect(Logger.prototype.error).toHaveBeenCalledTimes(1);
  });
});

describe('AllExceptionsFilter: generic codes', () => {
  it.each([
    [new BadRequestException(['count must be an integer number']), 400, 'request.invalid'],
    [new UnauthorizedException('a valid operator token is required'), 401, 'auth.unauthenticated'],
    [new ForbiddenException('this token lacks the "admin" scope'), 403, 'auth.forbidden'],
    [new NotFoundException('Cannot GET /v1/nothing'), 404, 'route.not-found'],
    [Object.assign(new Error('request entity too large'), { status: 413, expose: true, type: 'entity.too.large' }), 413, 'request.too-large'],
  ])('%p is a %i with code %s', (error, status, code) => {
    const { status: sent, body } = answer(error);
    expect(sent).toBe(status);
    expect(body.code).toBe(code);
  });
});
