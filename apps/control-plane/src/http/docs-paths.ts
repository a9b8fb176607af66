import type { NextFunction, Request, Response } from 'express';

/** Where Swagger UI is served; the OpenAPI document is at `${DOCS_PATH}/openapi.json`. */
export const DOCS_PATH = 'docs';

/**
 * Swagger UI's page refers to its assets relatively: `./docs/x.js` when served at `/docs`, `./x.js`
 * when the URL ends with a slash. @nestjs/swagger picks between the two by whether the whole URL,
 * query included, ends with `/`, and serves `/docs/index.html` like `/docs`: so `/docs/?x=1` and
 * `/docs/index.html` got pages whose assets resolve under `/docs/docs/` (404), and `/docs//` got
 * swagger-ui-dist's own index page (the Petstore demo). `/docs//…` is redirected to `/docs/`, and
 * `/docs/` with a query or `/docs/index.html` is rewritten to exactly `/docs/` before it is routed (`originalUrl` too: that is what
 * @nestjs/swagger reads); the UI reads its query (`?url=`) in the browser, not from the server.
 */
export function normalizeDocsPath(request: Request, response: Response, next: NextFunction): void {
  if (request.method === 'GET' || request.method === 'HEAD') {
    const queryStart = request.url.indexOf('?');
    const path = queryStart === -1 ? request.url : request.url.slice(0, queryStart);
    if (new RegExp(`^/${DOCS_PATH}//+(index\\.html)?$`).test(path)) {
      // The browser resolves `./x.js` against `/docs//`: only a redirect gives it the right base.
      response.redirect(301, `/${DOCS_PATH}/`);
      return;
    }
    if (path === `/${DOCS_PATH}/` || path === `/${DOCS_PATH}/index.html`) {
      request.url = `/${DOCS_PATH}/`;
      request.originalUrl = request.url;
    }
  }
  next();
}
