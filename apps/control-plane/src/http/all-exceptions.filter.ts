import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { DomainError } from '@rackseal/api-contracts';
import { redactUrl } from '@rackseal/logging';
import type { Request, Response } from 'express';
import { boundedMessage } from './bounded-message';
import { DATABASE_RETRY_AFTER_SECONDS, isDatabaseUnavailable } from './database-unavailable';
import type { ErrorBody } from './error-body';
import { DOMAIN_ERROR_CODES, genericCodeOf, KIND_STATUS } from './error-codes';
import { JSON_NOT_UTF8, JSON_TOO_DEEP, MAX_JSON_DEPTH } from './json-depth';
import { JSON_NOT_OBJECT } from './json-object';
import { loggableError } from './loggable-error';

/** body-parser errors carry an HTTP status and a machine-readable type; their text is safe to show. */
const BODY_PARSER_MESSAGES: Record<string, string> = {
  'entity.parse.failed': 'request body is not valid JSON',
  'entity.too.large': 'request body is too large',
  'encoding.unsupported': 'request body encoding is not supported',
  'charset.unsupported': 'request body charset is not supported',
  'request.aborted': 'request was aborted by the client',
  'request.size.invalid': 'request body length does not match Content-Length',
  'entity.verify.failed': 'request body was refused',
  'parameters.too.many': 'request body has too many parameters',
  'querystring.parse.rangeError': 'request body nests too deep',
  [JSON_NOT_UTF8]: 'request body is not valid UTF-8',
  [JSON_TOO_DEEP]: `request body nests too deep (at most ${MAX_JSON_DEPTH} levels of arrays and objects)`,
  [JSON_NOT_OBJECT]: 'the request body must be a JSON object',
};

interface BodyParserError {
  type?: string;
  status: number;
}

/**
 * A client error raised while reading the body: body-parser and raw-body raise http-errors, which
 * carry a 4xx `status` and `expose: true`, usually a `type` (a body that fails to decompress has
 * none: it is zlib's error given a 400). Any of them is the client's fault, never a 500.
 */
export function isBodyParserError(error: unknown): error is BodyParserError {
  if (typeof error !== 'object' || error === null) {
    return false;
  }
  const { status, expose, type } = error as { status?: unknown; expose?: unknown; type?: unknown };
  return typeof status === 'number' && status >= 400 && status < 500 && (expose === true || (typeof type === 'string' && type in BODY_PARSER_MESSAGES));
}

function bodyParserMessage(error: BodyParserError): string {
  if (error.type !== undefined && error.type in BODY_PARSER_MESSAGES) {
    return BODY_PARSER_MESSAGES[error.type]!;
  }
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && code.startsWith('Z_') ? 'request body could not be decompressed' : 'request body was refused';
}

/**
 * The one error shape, `{statusCode, error, code, message, requestId}`. A library's refusal is a
 * DomainError: its code's kind gives the status (error-codes.ts), so no controller maps errors by
 * hand. Client mistakes get their 4xx with a message that names the problem, bounded
 * in count and length. A database that cannot take the request now (pool exhausted, unreachable)
 * is a 503 with Retry-After. Anything unexpected becomes a 500 that carries only an error id: the
 * details go to the log under that id and never to the client, and the log gets neither query
 * values of the URL nor the parameters and values of a database error (loggableError).
 */
@Catch()
export class AllExceptionsFilter implements ExceptionFilter {
  private readonly logger = new Logger('HTTP');

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<Request & { id?: string }>();
    const response = http.getResponse<Response>();
    const body = this.toBody(exception, request);
    if (!response.headersSent) {
      if (body.statusCode === 503 && isDatabaseUnavailable(exception)) {
        response.setHeader('Retry-After', String(DATABASE_RETRY_AFTER_SECONDS));
      }
      if (exception instanceof DomainError && exception.code === body.code) {
        if (exception.retryAfterSeconds !== undefined) {
          response.setHeader('Retry-After', String(exception.retryAfterSeconds));
        }
        if (exception.kind === 'timeout') {
          // The client stalled mid-request: answer, then close (RFC 9110 §15.5.9); there is nothing to wait for.
          response.setHeader('Connection', 'close');
          response.once('finish', () => request.destroy());
        }
      }
      response.status(body.statusCode).json(body);
    }
  }

  private toBody(exception: unknown, request: Request & { id?: string }): ErrorBody {
    const requestId = request.id;
    const kind = exception instanceof DomainError ? DOMAIN_ERROR_CODES[exception.code] : undefined;
    if (exception instanceof DomainError && kind !== undefined) {
      const status = KIND_STATUS[kind];
      const message = exception.publicMessage();
      return {
        statusCode: status,
        error: STATUS_CODES[status] ?? 'Error',
        code: exception.code,
        message: boundedMessage(typeof message === 'string' ? message : [...message]),
        requestId,
      };
    }
    if (exception instanceof HttpException && exception.getStatus() < 500) {
      const status = exception.getStatus();
      const payload = exception.getResponse();
      const message =
        typeof payload === 'string'
          ? payload
          : ((payload as { message?: string | string[] }).message ?? exception.message);
      return {
        statusCode: status,
        error: STATUS_CODES[status] ?? 'Error',
        code: genericCodeOf(status, isRouteMiss(status, message)),
        message: boundedMessage(withoutQueryValues(message)),
        requestId,
      };
    }
    if (isBodyParserError(exception)) {
      return {
        statusCode: exception.status,
        error: STATUS_CODES[exception.status] ?? 'Bad Request',
        code: genericCodeOf(exception.status, false),
        message: bodyParserMessage(exception),
        requestId,
      };
    }
    if (exception instanceof HttpException && exception.getStatus() === HttpStatus.SERVICE_UNAVAILABLE) {
      const payload = exception.getResponse();
      const message = typeof payload === 'string' ? payload : ((payload as { message?: string }).message ?? 'unavailable');
      return { statusCode: 503, error: 'Service Unavailable', code: 'service.unavailable', message: boundedMessage(message), requestId };
    }
    if (isDatabaseUnavailable(exception)) {
      this.logger.warn({ requestId, error: loggableError(exception), method: request.method, url: redactUrl(request.originalUrl) }, 'database unavailable');
      return {
        statusCode: 503,
        error: 'Service Unavailable',
        code: 'database.unavailable',
        message: `the database cannot take this request now; retry in ${DATABASE_RETRY_AFTER_SECONDS} seconds`,
        requestId,
      };
    }
    const errorId = randomUUID();
    this.logger.error(
      { errorId, requestId, error: loggableError(exception), method: request.method, url: redactUrl(request.originalUrl) },
      'unhandled error',
    );
    return {
      statusCode: 500,
      error: 'Internal Server Error',
      code: 'internal',
      message: 'internal error; quote the errorId to your operator',
      requestId,
      errorId,
    };
  }
}

/** Nest's router answers a request no route matches with a 404 "Cannot GET /path". */
function isRouteMiss(status: number, message: string | string[]): boolean {
  return status === 404 && typeof message === 'string' && ROUTER_MISS.test(message);
}

const ROUTER_MISS = /^Cannot ([A-Z]+) (\S+)$/;

/**
 * The router's 404 ("Cannot GET /v1/x?access_token=rks_…") quotes the URL: its query values are
 * redacted as in the logs, so a response that a proxy or a browser history may keep never carries a
 * credential sent in the wrong place.
 */
function withoutQueryValues(message: string | string[]): string | string[] {
  if (typeof message !== 'string') {
    return message;
  }
  const routerMiss = ROUTER_MISS.exec(message);
  return routerMiss === null ? message : `Cannot ${routerMiss[1]} ${redactUrl(routerMiss[2]!)}`;
}
