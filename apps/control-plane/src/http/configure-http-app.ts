import { type INestApplication, ValidationPipe } from '@nestjs/common';
import { SwaggerModule } from '@nestjs/swagger';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { assignRequestId } from '@rackseal/logging';
import type { NextFunction, Request, Response } from 'express';
import { AllExceptionsFilter, isBodyParserError } from './all-exceptions.filter';
import { buildOpenApiDocument } from './openapi';

/** Request bodies larger than this are refused with 413 before they are parsed. */
export const JSON_BODY_LIMIT = '1mb';

/**
 * Everything HTTP-wide in one place so production and tests configure the app identically:
 * DTO validation (unknown fields refused), the single exception filter, body limits, OpenAPI.
 */
export function configureHttpApp(app: INestApplication): void {
  const express = app as NestExpressApplication;
  // Assigned before the body is parsed, so a refused body (400, 413) still carries an id;
  // pino-http keeps an id that is already there.
  express.use((request: Request & { id?: string }, response: Response, next: NextFunction) => {
    request.id ??= assignRequestId(request, response);
    next();
  });
  express.useBodyParser('json', { limit: JSON_BODY_LIMIT });
  // Nest turns body-parser's SyntaxError into a 400 carrying the parser's own text, losing its type;
  // pass the filter an error it recognises so every parser refusal gets the fixed wording.
  express.use((error: unknown, _request: Request, _response: Response, next: NextFunction) => {
    next(isBodyParserError(error) ? Object.assign(new Error(error.type), { type: error.type, status: error.status }) : error);
  });
  express.disable('x-powered-by');
  app.useGlobalPipes(
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      transformOptions: { enableImplicitConversion: false },
    }),
  );
  app.useGlobalFilters(new AllExceptionsFilter());
  SwaggerModule.setup('docs', app, () => buildOpenApiDocument(app), { jsonDocumentUrl: 'docs/openapi.json' });
}
