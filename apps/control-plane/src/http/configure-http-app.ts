import { type INestApplication, ValidationPipe } from '@nestjs/common';
import { SwaggerModule } from '@nestjs/swagger';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { assignRequestId } from '@rackseal/logging';
import { MetricsRegistry } from '@rackseal/metrics';
import { POLICY_BODY_LIMIT_BYTES, RUNTIME_POLICY_BODY_LIMIT_BYTES } from '@rackseal/api-contracts';
import { FINISH_ATTESTATION_BODY_LIMIT_BYTES, nodeApiPath } from '@rackseal/node-api-contracts';
import { json, type NextFunction, type Request, type Response } from 'express';
import { mountNodeBodyLimits } from '../hardening/body-limits';
import { configureHardening } from '../hardening/configure-hardening';
import { AllExceptionsFilter, isBodyParserError } from './all-exceptions.filter';
import { DOCS_PATH, normalizeDocsPath } from './docs-paths';
import { DeferredJsonBodyInterceptor, deferJsonBody, isJsonBodyDeferred } from './deferred-json-body';
import { httpMetricsMiddleware } from './http-metrics';
import { JsonBodyContentTypeInterceptor } from './json-body';
import { checkJsonBody } from './json-object';
import { keepNodeRawBody } from './raw-body';
import { buildOpenApiDocument } from './openapi';
import { RefuseNulBytesPipe } from './refuse-nul-bytes.pipe';
import { serveUi } from '../ui/serve-ui';

/** Request bodies larger than this are refused with 413 before they are parsed. */
export const JSON_BODY_LIMIT = '1mb';

/**
 * The routes allowed a larger body: the attestation finish call carries the machine's event log
 * (up to 1 MiB, base64 in the JSON), PUT of a group's PCR policy up to 16 canary logs
 * (POLICY_BODY_LIMIT_BYTES). The finish route's parser runs first and marks the body parsed, so
 * the general one skips it; the policy's is read only after the bearer guard (deferJsonBody).
 */
export const FINISH_ATTESTATION_PATH = nodeApiPath('attestations/:id/finish');

/** PUT of a group's PCR policy, whose allowed sets may each carry a canary's event log. */
export const GROUP_POLICY_PATH = '/v1/groups/:group/policy';

/** PUT of a group's runtime policy: a Keylime allowlist of a whole distribution (RUNTIME_POLICY_BODY_LIMIT_BYTES). */
export const GROUP_RUNTIME_POLICY_PATH = '/v1/groups/:group/runtime-policy';

/**
 * Everything HTTP-wide in one place so production and tests configure the app identically:
 * JSON bodies only where a route takes one (415 otherwise), bounded in size and nesting; NUL bytes
 * refused in every path parameter, query and body (400 naming the field); DTO validation (unknown
 * fields refused); the single exception filter; OpenAPI.
 */
export function configureHttpApp(app: INestApplication): void {
  const express = app as NestExpressApplication;
  // First: times every request, refused ones included (http-metrics.ts).
  express.use(httpMetricsMiddleware(app.get(MetricsRegistry)));
  // Assigned before the body is parsed, so a refused body (400, 413) still carries an id;
  // pino-http keeps an id that is already there.
  express.use((request: Request & { id?: string }, response: Response, next: NextFunction) => {
    request.id ??= assignRequestId(request, response);
    next();
  });
  // Security headers and the per-address rate limit, before any body is read (hardening/).
  const credentialRateLimit = configureHardening(app);
  // The dashboard's static files (issue 16), before the body parsers: a GET of them has no body.
  serveUi(express);
  // Node API bodies are kept as received too: a signed node request covers their bytes.
  const verify = keepNodeRawBody(checkJsonBody);
  express.use(FINISH_ATTESTATION_PATH, json({ limit: FINISH_ATTESTATION_BODY_LIMIT_BYTES, verify }));
  // The node API's small bodies, each at its own limit (hardening/body-limits.ts lists every route's).
  mountNodeBodyLimits(express, verify);
  const policyBody = deferJsonBody(POLICY_BODY_LIMIT_BYTES);
  express.use(GROUP_POLICY_PATH, (request: Request, response: Response, next: NextFunction) =>
    // Exact path and PUT only: the promote route below it keeps the general limit.
    request.method === 'PUT' && (request.path === '/' || request.path === '') ? policyBody(request, response, next) : next(),
  );
  const runtimePolicyBody = deferJsonBody(RUNTIME_POLICY_BODY_LIMIT_BYTES);
  express.use(GROUP_RUNTIME_POLICY_PATH, (request: Request, response: Response, next: NextFunction) =>
    // Exact path and PUT only: from-machine below it keeps the general limit.
    request.method === 'PUT' && (request.path === '/' || request.path === '') ? runtimePolicyBody(request, response, next) : next(),
  );
  const general = json({ limit: JSON_BODY_LIMIT, verify });
  // Named so: Nest adds its own JSON parser (100 kB) at init unless one named `jsonParser` is in place.
  express.use(function jsonParser(request: Request, response: Response, next: NextFunction) {
    return isJsonBodyDeferred(request) ? next() : general(request, response, next);
  });
  // Nest turns body-parser's SyntaxError into a 400 carrying the parser's own text, losing its type;
  // pass the filter an error it recognises so every parser refusal gets the fixed wording.
  express.use((error: unknown, _request: Request, _response: Response, next: NextFunction) => {
    next(
      isBodyParserError(error)
        ? Object.assign(new Error(error.type ?? 'request body refused'), { type: error.type, status: error.status, code: (error as { code?: unknown }).code, expose: true })
        : error,
    );
  });
  express.disable('x-powered-by');
  express.use(normalizeDocsPath);
  // In this order: a credential over its rate limit is refused before anything else; a deferred
  // body is read only once its Content-Type is known to be JSON.
  app.useGlobalInterceptors(credentialRateLimit, new JsonBodyContentTypeInterceptor(), new DeferredJsonBodyInterceptor());
  app.useGlobalPipes(
    // First: a NUL byte is refused before anything else looks at the value.
    new RefuseNulBytesPipe(),
    new ValidationPipe({
      whitelist: true,
      forbidNonWhitelisted: true,
      transform: true,
      transformOptions: { enableImplicitConversion: false },
    }),
  );
  app.useGlobalFilters(new AllExceptionsFilter());
  SwaggerModule.setup(DOCS_PATH, app, () => buildOpenApiDocument(app), { jsonDocumentUrl: `${DOCS_PATH}/openapi.json` });
}
