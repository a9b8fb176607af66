import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Request, Response } from 'express';
import type { ErrorBody } from './error-body';

/** body-parser errors carry an HTTP status and a machine-readable type; their text is safe to show. */
const BODY_PARSER_MESSAGES: Record<string, string> = {
  'entity.parse.failed': 'request body is not valid JSON',
  'entity.too.large': 'request body is too large',
  'encoding.unsupported': 'request body encoding is not supported',
  'charset.unsupported': 'request body charset is not supported',
  'request.aborted': 'request was aborted by the client',
  'entity.verify.failed': 'request body was refused',
};

interface BodyParserError {
  type: string;
  status: number;
}

export function isBodyParserError(error: unknown): error is BodyParserError {
  return (
    typeof error === 'object' &&
    error !== null &&
    typeof (error as BodyParserError).type === 'string' &&
    typeof (error as BodyParserError).status === 'number' &&
    (error as BodyParserError).type in BODY_PARSER_MESSAGES
  );
}

/**
 * The one error shape. Client mistakes get their 4xx with a message that names the problem.
 * Anything unexpected becomes a 500 that carries only an error id: the details (stack, SQL, paths)
 * go to the log under that id and never to the client.
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
      response.status(body.statusCode).json(body);
    }
  }

  private toBody(exception: unknown, request: Request & { id?: string }): ErrorBody {
    const requestId = request.id;
    if (exception instanceof HttpException && exception.getStatus() < 500) {
      const status = exception.getStatus();
      const payload = exception.getResponse();
      const message =
        typeof payload === 'string'
          ? payload
          : ((payload as { message?: string | string[] }).message ?? exception.message);
      return { statusCode: status, error: STATUS_CODES[status] ?? 'Error', message, requestId };
    }
    if (isBodyParserError(exception) && exception.status >= 400 && exception.status < 500) {
      return {
        statusCode: exception.status,
        error: STATUS_CODES[exception.status] ?? 'Bad Request',
        message: BODY_PARSER_MESSAGES[exception.type]!,
        requestId,
      };
    }
    if (exception instanceof HttpException && exception.getStatus() === HttpStatus.SERVICE_UNAVAILABLE) {
      const payload = exception.getResponse();
      const message = typeof payload === 'string' ? payload : ((payload as { message?: string }).message ?? 'unavailable');
      return { statusCode: 503, error: 'Service Unavailable', message, requestId };
    }
    const errorId = randomUUID();
    this.logger.error(
      { errorId, requestId, err: exception, method: request.method, url: request.originalUrl },
      'unhandled error',
    );
    return {
      statusCode: 500,
      error: 'Internal Server Error',
      message: 'internal error; quote the errorId to your operator',
      requestId,
      errorId,
    };
  }
}
