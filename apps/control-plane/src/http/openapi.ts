import type { INestApplication } from '@nestjs/common';
import { METHOD_METADATA } from '@nestjs/common/constants';
import { ModulesContainer } from '@nestjs/core';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { HeadersObject, OperationObject, ResponsesObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { NODE_API_ROUTE, NODE_SIGNED_ROUTE, PUBLIC_ROUTE, REQUIRED_SCOPE } from '../auth/auth.decorators';
import { NODE_REQUEST_REFUSAL_CODES } from '@rackseal/node-api-contracts';
import { MAX_ERROR_MESSAGES } from './bounded-message';
import { DATABASE_RETRY_AFTER_SECONDS } from './database-unavailable';
import { ErrorBody } from './error-body';
import { JSON_MEDIA_TYPE, takesJsonBody } from './json-body';
import { MAX_JSON_DEPTH } from './json-depth';

const BEARER = 'bearer';
// Where @ApiConsumes() keeps its media types (@nestjs/swagger API_CONSUMES, not exported).
const API_CONSUMES = 'swagger/apiConsumes';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

// Examples of the bodies routes read themselves (libs/inventory README: header row, then one machine per line).
const MEDIA_TYPE_EXAMPLES: Record<string, string> = {
  'text/csv': `serial,ek_pub_hash,group\nSRV-0001,${'0123456789abcdef'.repeat(4)},rack-a\n`,
};

type ControllerClass = abstract new (...args: never[]) => unknown;

/** What the document needs to know about one controller method, read from its decorators. */
interface RouteFacts {
  readonly public: boolean;
  /** A node API route (@NodeApi): no operator token; authenticated by the node protocol. */
  readonly node: boolean;
  /** A node route after enrollment (@NodeAuthenticated): signed with the node credential. */
  readonly signed: boolean;
  /** The @RequireScope of the method or, failing that, of its controller (as the guard reads it). */
  readonly scope: string | undefined;
  readonly jsonBody: boolean;
  readonly consumes: readonly string[];
}

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const config = new DocumentBuilder()
    .setTitle('rackseal')
    .setDescription(
      'Cluster secret distribution with TPM-sealed bootstrapping: operator API (/v1) and node API. ' +
        'Every error uses the ErrorBody shape. Operator routes need `Authorization: Bearer rks_…` with the scope ' +
        'named in the operation (`x-required-scope`); `admin` holds every scope.',
    )
    .setVersion('0.1.0')
    .addBearerAuth({
      type: 'http',
      scheme: 'bearer',
      bearerFormat: 'rks_ + 43 base64url characters (opaque)',
      description: 'An operator token from `rackseal token create` or `POST /v1/tokens`. Opaque: not a JWT.',
    }, BEARER)
    .build();
  const document = SwaggerModule.createDocument(app, config, { extraModels: [ErrorBody] });
  const routes = routeFactsByOperationId(app);
  for (const pathItem of Object.values(document.paths)) {
    for (const method of HTTP_METHODS) {
      const operation = pathItem[method];
      const facts = operation?.operationId === undefined ? undefined : routes.get(operation.operationId);
      if (operation !== undefined && facts !== undefined) {
        describeOperation(operation, facts, method);
      }
    }
  }
  return document;
}

/**
 * Completes an operation from its route's decorators, so the document cannot drift from what the
 * guard, the interceptors and the exception filter do: the scope the guard demands, the request
 * body of a route that reads its own (CSV), and the error responses every route can give.
 */
function describeOperation(
  operation: OperationObject & { 'x-required-scope'?: string | null; 'x-node-api'?: boolean; 'x-node-authentication'?: string },
  facts: RouteFacts,
  method: string,
): void {
  if (facts.node) {
    operation['x-node-api'] = true;
    let who = 'Node API: called by rackseal-agent, never with an operator token.';
    if (facts.signed) {
      // Not a securityScheme: the operator API sweep treats every operation with `security` as a bearer route.
      operation['x-node-authentication'] = 'RackSeal-HMAC-SHA256';
      who +=
        ' Signed with the node credential: `Authorization: RackSeal-HMAC-SHA256 Credential=…, Timestamp=…, Nonce=…, Signature=…` and ' +
        '`Content-Digest: sha-256=:…:` (libs/node-identity README).';
    }
    operation.description = operation.description === undefined ? who : `${operation.description}\n\n${who}`;
  } else if (!facts.public) {
    operation.security = [{ [BEARER]: [] }];
    operation['x-required-scope'] = facts.scope ?? null;
    const needs =
      facts.scope === undefined
        ? 'Declares no scope: refused for every token.'
        : `Requires a token with the \`${facts.scope}\` scope (or \`admin\`).`;
    operation.description = operation.description === undefined ? needs : `${operation.description}\n\n${needs}`;
  }
  const otherTypes = facts.consumes.filter((type) => type !== JSON_MEDIA_TYPE);
  if (operation.requestBody === undefined && !facts.jsonBody && otherTypes.length > 0) {
    // The route reads the request stream itself (no @Body()), so nothing else documents the body.
    operation.requestBody = {
      required: true,
      description: `The upload, streamed: Content-Type ${otherTypes.join(' or ')}, UTF-8.`,
      content: Object.fromEntries(otherTypes.map((type) => [type, { schema: { type: 'string' }, ...(MEDIA_TYPE_EXAMPLES[type] === undefined ? {} : { example: MEDIA_TYPE_EXAMPLES[type] }) }])),
    };
  }
  const hasInput = operation.requestBody !== undefined || (operation.parameters?.length ?? 0) > 0;
  const expected = facts.jsonBody ? JSON_MEDIA_TYPE : otherTypes.join(' or ');
  const responses: ResponsesObject = operation.responses;
  const add = (status: string, description: string, headers?: HeadersObject): void => {
    responses[status] ??= {
      description,
      ...(headers === undefined ? {} : { headers }),
      content: { [JSON_MEDIA_TYPE]: { schema: { $ref: '#/components/schemas/ErrorBody' } } },
    };
  };
  if (hasInput) {
    add(
      '400',
      'Invalid path parameter, query or body: each message names the field (NUL bytes, control characters in names, ' +
        `numbers out of range, JSON nested over ${MAX_JSON_DEPTH} levels are all refused). At most ${MAX_ERROR_MESSAGES} messages.`,
    );
  }
  if (!facts.public && !facts.node) {
    add('401', 'No valid operator token (missing, malformed, unknown or revoked); one message for all.');
    add('403', `The token lacks the \`${facts.scope ?? '(none)'}\` scope.`);
  }
  if (facts.signed) {
    add(
      '401',
      `The node request does not authenticate (WWW-Authenticate: RackSeal-HMAC-SHA256): ${NODE_REQUEST_REFUSAL_CODES.join(', ')}.`,
    );
  }
  if (operation.requestBody !== undefined) {
    add('413', 'Request body too large.');
    add('415', `Content-Type is not ${expected}.`);
  } else if (method !== 'get' && method !== 'head') {
    // The body parsers run before routing decides the route takes no body.
    add('413', 'A request body was sent and is too large (this operation takes none).');
  }
  if (!facts.public) {
    add('503', 'The database cannot take the request now (pool exhausted or unreachable); retry after Retry-After seconds.', {
      'Retry-After': { description: `Seconds to wait (${DATABASE_RETRY_AFTER_SECONDS})`, schema: { type: 'integer' } },
    });
  }
}

/** Facts of every controller method, keyed by the operationId @nestjs/swagger gives it (`Controller_method`). */
function routeFactsByOperationId(app: INestApplication): Map<string, RouteFacts> {
  const facts = new Map<string, RouteFacts>();
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as ControllerClass | null;
      if (typeof controller !== 'function') {
        continue;
      }
      for (const name of Object.getOwnPropertyNames(controller.prototype)) {
        const handler = (controller.prototype as Record<string, unknown>)[name];
        if (name === 'constructor' || typeof handler !== 'function' || !Reflect.hasMetadata(METHOD_METADATA, handler)) {
          continue;
        }
        facts.set(`${controller.name}_${name}`, {
          public: ((Reflect.getMetadata(PUBLIC_ROUTE, handler) ?? Reflect.getMetadata(PUBLIC_ROUTE, controller)) as boolean | undefined) === true,
          node: ((Reflect.getMetadata(NODE_API_ROUTE, handler) ?? Reflect.getMetadata(NODE_API_ROUTE, controller)) as boolean | undefined) === true,
          signed: ((Reflect.getMetadata(NODE_SIGNED_ROUTE, handler) ?? Reflect.getMetadata(NODE_SIGNED_ROUTE, controller)) as boolean | undefined) === true,
          scope: (Reflect.getMetadata(REQUIRED_SCOPE, handler) ?? Reflect.getMetadata(REQUIRED_SCOPE, controller)) as string | undefined,
          jsonBody: takesJsonBody(controller, name),
          consumes: ((Reflect.getMetadata(API_CONSUMES, handler) ?? Reflect.getMetadata(API_CONSUMES, controller) ?? []) as string[]),
        });
      }
    }
  }
  return facts;
}
