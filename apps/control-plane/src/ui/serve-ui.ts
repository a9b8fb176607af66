import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { type NextFunction, type Request, type Response, static as serveStatic } from 'express';

/** Where the dashboard is served (issue 16). */
export const UI_PATH = '/ui';

/**
 * Where `npm run build` puts the dashboard (ui/vite.config.mts): dist/ui, beside dist/apps. Built,
 * this file runs from dist/apps/control-plane/src/ui/, four levels below dist/; from source (the
 * in-process tests), four levels below the repository, whose dist/ui it serves then.
 */
export const UI_BUILD_DIR = ((): string => {
  const root = resolve(__dirname, '..', '..', '..', '..');
  return basename(root) === 'dist' ? join(root, 'ui') : join(root, 'dist', 'ui');
})();

/**
 * The dashboard's Content-Security-Policy (CSP Level 3): scripts, styles, images and API calls from
 * this origin only, nothing inline, no plugins, no framing, forms and <base> nowhere else. The
 * bundle is built so (ui/vite.config.ts: no inlined assets, no preload polyfill script).
 */
export const UI_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** Vite names every built asset after a hash of its content: one URL, one content, forever. */
const HASHED_ASSET = /^\/assets\/[^/]+-[A-Za-z0-9_-]{8,}\.(?:js|css|svg|png|woff2)$/;

function securityHeaders(response: Response): void {
  response.setHeader('Content-Security-Policy', UI_CONTENT_SECURITY_POLICY);
  response.setHeader('X-Content-Type-Options', 'nosniff');
  response.setHeader('X-Frame-Options', 'DENY');
  response.setHeader('Referrer-Policy', 'no-referrer');
  response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
  response.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
  response.setHeader('Permissions-Policy', 'camera=(), microphone=(), geolocation=(), usb=()');
}

/**
 * Serves the built dashboard under /ui with its security headers: hashed assets cached for a year
 * (immutable), index.html revalidated on every load so a new release is picked up at once. Static
 * files need no token (they hold no data); everything the pages show comes from the operator API
 * with its own authentication. When the UI was not built, /ui answers 404 saying so.
 */
export function serveUi(app: NestExpressApplication, buildDir: string = UI_BUILD_DIR): void {
  const built = existsSync(join(buildDir, 'index.html'));
  const files = serveStatic(buildDir, {
    index: false,
    redirect: false,
    fallthrough: true,
    dotfiles: 'ignore',
    setHeaders: (response, _path) => {
      securityHeaders(response);
    },
  });
  app.use(UI_PATH, (request: Request, response: Response, next: NextFunction) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      next();
      return;
    }
    securityHeaders(response);
    if (!built) {
      response.status(404).type('text/plain').send('the dashboard is not built: run npm run build\n');
      return;
    }
    if (request.path === '/' || request.path === '/index.html') {
      // /ui without the slash: relative asset URLs need the directory form.
      if (request.originalUrl.split('?')[0] === UI_PATH) {
        response.redirect(301, `${UI_PATH}/`);
        return;
      }
      response.setHeader('Cache-Control', 'no-cache');
      response.sendFile(join(buildDir, 'index.html'));
      return;
    }
    if (HASHED_ASSET.test(request.path)) {
      response.setHeader('Cache-Control', 'public, max-age=31536000, immutable');
      files(request, response, () => response.status(404).type('text/plain').send('no such asset\n'));
      return;
    }
    response.setHeader('Cache-Control', 'no-cache');
    files(request, response, () => response.status(404).type('text/plain').send('no such file\n'));
  });
}
