import { applyDecorators, createParamDecorator, type ExecutionContext, SetMetadata, UseGuards } from '@nestjs/common';
import type { Scope, TokenPrincipal } from '@rackseal/api-tokens';
import { type NodeCaller, NodeRequestGuard } from './node-request.guard';

export const PUBLIC_ROUTE = 'rackseal:public-route';
export const REQUIRED_SCOPE = 'rackseal:required-scope';
export const NODE_API_ROUTE = 'rackseal:node-api-route';
export const NODE_SIGNED_ROUTE = 'rackseal:node-signed-route';
export const NODE_QUARANTINED_CALLER = 'rackseal:node-quarantined-caller';

/** Reachable without a token (health probes). Every other route needs a bearer token. */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/**
 * A node API route (under /node/v1): called by agents, never with an operator token, so the operator
 * BearerAuthGuard skips it. Node routes are their own guard family: the enrollment calls are
 * authenticated by the protocol itself (EK certificate, credential activation, quote); the routes
 * after enrollment are @NodeAuthenticated().
 */
export const NodeApi = (): MethodDecorator & ClassDecorator => SetMetadata(NODE_API_ROUTE, true);

/**
 * A node API route after enrollment: a request signed with the machine's node credential
 * (NodeRequestGuard), from a machine that may call (attested). The handler reads the caller with
 * @NodeCallerOf(). `quarantinedToo`: a quarantined machine's live credential is accepted as well —
 * only for GET /node/v1/self, the one route that tells a quarantined machine to attest again once
 * its group approves a new state (it gets nothing else), and for GET /node/v1/approvals, which
 * refuses it itself so the refusal is audited (approval.machine-quarantined).
 */
export const NodeAuthenticated = (options: { quarantinedToo?: boolean } = {}): MethodDecorator & ClassDecorator =>
  applyDecorators(NodeApi(), SetMetadata(NODE_SIGNED_ROUTE, true), SetMetadata(NODE_QUARANTINED_CALLER, options.quarantinedToo === true), UseGuards(NodeRequestGuard));

/** The machine of a request NodeRequestGuard authenticated. */
export const NodeCallerOf = createParamDecorator((_: unknown, context: ExecutionContext): NodeCaller => {
  return context.switchToHttp().getRequest<{ node: NodeCaller }>().node;
});

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
