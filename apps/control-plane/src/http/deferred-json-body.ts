import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import { json, type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { from, type Observable, switchMap } from 'rxjs';
import { checkJsonBody } from './json-object';

const DEFERRED = Symbol('rackseal.deferredJsonBody');

interface Deferred {
  [DEFERRED]?: { readonly parser: RequestHandler; readonly limitBytes: number };
}

/**
 * Middleware for a route whose JSON body may be large (PUT of a group's PCR policy, with its
 * canaries' event logs): the body is not read before routing, as every other JSON body is, but
 * after the guards, by DeferredJsonBodyInterceptor with this limit. A request without a valid token
 * is answered 401 having read its headers only, not up to `limitBytes` of body; one whose
 * Content-Length is over the limit is answered 413 before a byte of it is read.
 */
export function deferJsonBody(limitBytes: number): RequestHandler {
  const deferred = { parser: json({ limit: limitBytes, verify: checkJsonBody }), limitBytes };
  return (request: Request, _response: Response, next: NextFunction) => {
    (request as Request & Deferred)[DEFERRED] = deferred;
    next();
  };
}

/** Whether the general JSON body parser must leave this request's body to DeferredJsonBodyInterceptor. */
export function isJsonBodyDeferred(request: Request): boolean {
  return (request as Request & Deferred)[DEFERRED] !== undefined;
}

/**
 * Reads a deferred JSON body (deferJsonBody) once the guards let the request through, before the
 * pipes read `@Body()`. Its refusals (413, 400, 415 charset) are body-parser's, worded by the
 * exception filter as every body parser refusal is.
 */
@Injectable()
export class DeferredJsonBodyInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<Request & Deferred>();
    const deferred = request[DEFERRED];
    if (deferred === undefined) {
      return next.handle();
    }
    // body-parser refuses a declared length over its limit only after reading the body off to its
    // end (to answer a client still sending): 20 MB read to be told "too large". Refused here
    // instead, before reading; Node discards what the client still sends after the answer.
    const declared = Number(request.headers['content-length']);
    if (Number.isFinite(declared) && declared > deferred.limitBytes) {
      throw Object.assign(new Error('request entity too large'), { status: 413, type: 'entity.too.large', expose: true });
    }
    const { parser } = deferred;
    const read = new Promise<void>((resolve, reject) => {
      void parser(request, http.getResponse<Response>(), (error?: unknown) => (error === undefined ? resolve() : reject(error as Error)));
    });
    return from(read).pipe(switchMap(() => next.handle()));
  }
}
