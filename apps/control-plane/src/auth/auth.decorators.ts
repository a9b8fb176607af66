import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import type { Scope, TokenPrincipal } from '@rackseal/api-tokens';

export const PUBLIC_ROUTE = 'rackseal:public-route';
export const REQUIRED_SCOPE = 'rackseal:required-scope';
export const NODE_API_ROUTE = 'rackseal:node-api-route';

/** Reachable without a token (health probes). Every other route needs a bearer token. */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/**
 * A node API route (under /node/v1): called by agents, never with an operator token, so the operator
 * BearerAuthGuard skips it. Node routes are their own guard family: the enrollment calls are
 * authenticated by the protocol itself (EK certificate, credential activation, quote); the routes
 * after enrollment add the node request signature guard (libs/node-identity).
 */
export const NodeApi = (): MethodDecorator & ClassDecorator => SetMetadata(NODE_API_ROUTE, true);

/** The scope a token must hold for this route (`admin` holds them all). */
export const RequireScope = (scope: Scope): MethodDecorator & ClassDecorator => SetMetadata(REQUIRED_SCOPE, scope);

/** The authenticated operator token of the request. */
export const Principal = createParamDecorator((_: unknown, context: ExecutionContext): TokenPrincipal => {
  return context.switchToHttp().getRequest<{ principal: TokenPrincipal }>().principal;
});

/** `token:<id>`: how audit records name the operator behind a request. */
export function actorOf(principal: TokenPrincipal): string {
  return `token:${principal.tokenId}`;
}
