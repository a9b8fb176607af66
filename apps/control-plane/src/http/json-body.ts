import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor, UnsupportedMediaTypeException } from '@nestjs/common';
import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import type { Request } from 'express';
import type { Observable } from 'rxjs';

/** The one media type of JSON request bodies (the only type the JSON body parser reads). */
export const JSON_MEDIA_TYPE = 'application/json';

/** Whether a controller method declares a `@Body()` parameter, i.e. expects a JSON body. */
export function takesJsonBody(controller: abstract new (...args: never[]) => unknown, method: string): boolean {
  // Nest keeps a route's parameter decorators on the class, keyed `${RouteParamtypes}:${index}`.
  const args = (Reflect.getMetadata(ROUTE_ARGS_METADATA, controller, method) ?? {}) as Record<string, unknown>;
  return Object.keys(args).some((key) => key.split(':')[0] === String(RouteParamtypes.BODY));
}

/**
 * A route that takes a JSON body answers 415 naming `application/json` to any other Content-Type
 * (or none), instead of validating the empty object left by a parser that did not run and
 * answering with a wall of "must be a string" messages. Runs after authentication (guards) and
 * before validation (pipes). Routes that read another type (the CSV import) check their own.
 */
@Injectable()
export class JsonBodyContentTypeInterceptor implements NestInterceptor {
  private readonly cache = new WeakMap<object, boolean>();

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const handler = context.getHandler();
    let expectsJson = this.cache.get(handler);
    if (expectsJson === undefined) {
      expectsJson = takesJsonBody(context.getClass(), handler.name);
      this.cache.set(handler, expectsJson);
    }
    if (expectsJson) {
      const request = context.switchToHttp().getRequest<Request>();
      const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== JSON_MEDIA_TYPE) {
        throw new UnsupportedMediaTypeException(`send the request body as Content-Type: ${JSON_MEDIA_TYPE}`);
      }
    }
    return next.handle();
  }
}
