import { BadRequestException, type CallHandler, type ExecutionContext, Injectable, type NestInterceptor, UnsupportedMediaTypeException } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import type { Request } from 'express';
import type { Observable } from 'rxjs';

/** The one media type of JSON request bodies (the only type the JSON body parser reads). */
export const JSON_MEDIA_TYPE = 'application/json';

/** What a route does with a request body: a JSON one (`@Body()`), its own reading (`@Req()`: the CSV import), or none. */
export type BodyUse = 'json' | 'own' | 'none';

/** Whether a controller method declares a `@Body()` parameter (a JSON body), reads the request itself (`@Req()`), or neither. */
export function bodyUseOf(controller: abstract new (...args: never[]) => unknown, method: string): BodyUse {
  // Nest keeps a route's parameter decorators on the class, keyed `${RouteParamtypes}:${index}`.
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, method) ?? {}) as Record<string, unknown>;
  const types = new Set(Object.keys(args).map((key) => key.split(':')[0]));
  return types.has(String(RouteParamtypes.BODY)) ? 'json' : types.has(String(RouteParamtypes.REQUEST)) ? 'own' : 'none';
}

/** Whether a controller method declares a `@Body()` parameter, i.e. expects a JSON body. */
export function takesJsonBody(controller: abstract new (...args: never[]) => unknown, method: string): boolean {
  return bodyUseOf(controller, method) === 'json';
}

/** Methods whose request content has no defined meaning (RFC 9110 §9.3.1, §9.3.2): their bodies are left alone. */
const BODILESS_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Whether the request carries content (RFC 9112 §6.3: a Transfer-Encoding, or a Content-Length other than 0). */
function sendsBody(request: Request): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length.trim() !== '0');
}

/** An empty JSON object (or empty form): what many clients send by default on a POST. */
function isEmptyObject(body: unknown): boolean {
  return typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0;
}

/**
 * A route's body as the route takes it. A route that takes a JSON body answers 415 naming
 * `application/json` to any other Content-Type (or none), instead of validating the empty object
 * left by a parser that did not run and answering with a wall of "must be a string" messages. A
 * route that takes no body (`POST /v1/machines/:ref/reattest`, the enable and delete routes) answers
 * 400 to one, as the routes with a body refuse unknown fields: a field the server ignores is a
 * client's mistake it should hear about. Sending none, or `{}`, is the same. Runs after
 * authentication (guards) and before validation (pipes). Routes that read another type (the CSV
 * import) check their own.
 */
@Injectable()
export class JsonBodyContentTypeInterceptor implements NestInterceptor {
  private readonly cache = new WeakMap<object, BodyUse>();

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const handler = context.getHandler();
    let use = this.cache.get(handler);
    if (use === undefined) {
      use = bodyUseOf(context.getClass(), handler.name);
      this.cache.set(handler, use);
    }
    const request = context.switchToHttp().getRequest<Request>();
    if (use === 'json') {
      const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== JSON_MEDIA_TYPE) {
        throw new UnsupportedMediaTypeException(`send the request body as Content-Type: ${JSON_MEDIA_TYPE}`);
      }
    } else if (use === 'none' && !BODILESS_METHODS.has(request.method) && sendsBody(request) && !isEmptyObject(request.body)) {
      throw new BadRequestException('this operation takes no request body: send none (or {})');
    }
    return next.handle();
  }
}
