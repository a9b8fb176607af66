import { methodLabel, MetricsRegistry, statusClassLabel, UNMATCHED_ROUTE } from '@rackseal/metrics';
import type { NextFunction, Request, Response } from 'express';

/** Seconds: from a cached GET (~1 ms) to the 30 s long poll of the mailbox. */
const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/**
 * Express middleware timing every request into rackseal_http_request_duration_seconds{route, method,
 * status_class}. `route` is the matched route's template (`/v1/machines/:ref`), never the raw path:
 * ids and serials would make a series each. A request no route matched (an unknown path, a body
 * refused before routing) is `(unmatched)`. Installed first, so it times what every later layer costs.
 */
export function httpMetricsMiddleware(metrics: MetricsRegistry): (request: Request, response: Response, next: NextFunction) => void {
  const duration = metrics.histogram(
    'rackseal_http_request_duration_seconds',
    'HTTP requests served by this process, by route template, method and status class: latency and, as _count, the rate.',
    ['route', 'method', 'status_class'],
    BUCKETS,
  );
  return (request, response, next) => {
    const started = process.hrtime.bigint();
    response.once('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      duration.observe({ route: routeTemplate(request), method: methodLabel(request.method), status_class: statusClassLabel(response.statusCode) }, seconds);
    });
    next();
  };
}

/** Express sets `req.route` to the matched route; Nest registers each handler with its full path. */
function routeTemplate(request: Request): string {
  const path = (request.route as { path?: unknown } | undefined)?.path;
  return typeof path === 'string' ? path : UNMATCHED_ROUTE;
}
