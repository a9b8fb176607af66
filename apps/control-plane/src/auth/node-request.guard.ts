import { type CanActivate, type ExecutionContext, Injectable, Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { NodeCredentials, type LiveNodeCredential, NodeRequestNonces } from '@rackseal/attestation';
import { AuditBudget, AuditLog, SuppressedAuditRecords } from '@rackseal/audit';
import type { Machine } from '@rackseal/machines';
import { NODE_AUTH_SCHEME, type NodeRequestRefusal, type NodeRequestRefusalReason, verifyNodeRequest } from '@rackseal/node-identity';
import { Clock } from '@rackseal/platform';
import type { Request, Response } from 'express';
import { type WithRawBody, rawBodyOf } from '../http/raw-body';
import { NODE_QUARANTINED_CALLER } from './auth.decorators';
import { NodeRequestError } from '../node-api/node-request-errors';

/** The window around the server's clock a signed request's timestamp must fall in (docs/decisions.md, "Node identity"). */
export const NODE_REQUEST_MAX_SKEW_SECONDS = 300;

/** The machine a signed node request came from, set by NodeRequestGuard. */
export interface NodeCaller {
  readonly credentialId: string;
  readonly machine: Machine;
}

/**
 * Refusals that say someone holds what they should not, audited as `node.request-refused`: a
 * signature that does not verify under a live credential, a credential that is not live (rotated,
 * revoked, or made up), a replay. The others (no header, malformed, stale, digest) are a broken or
 * misconfigured client, or what a replay attempt turns into after the window, and carry nothing new.
 */
const AUDITED: ReadonlySet<NodeRequestRefusalReason> = new Set(['bad-signature', 'unknown-credential', 'replayed']);

/**
 * Authenticates a node API route with the node credential (libs/node-identity's signed request):
 * the raw headers (a duplicate Authorization is `malformed`), the method, the request target as
 * sent and the body bytes as received, under the live credential (libs/attestation NodeCredentials,
 * read per request) with the PostgreSQL replay store. Then the machine's state: a credential
 * authenticates only an `attested` machine, or one attesting again after having been attested.
 * Refusals are 401 `node.<reason>` with `WWW-Authenticate: RackSeal-HMAC-SHA256`.
 */
@Injectable()
export class NodeRequestGuard implements CanActivate {
  private readonly logger = new Logger(NodeRequestGuard.name);
  private readonly budget: AuditBudget;

  constructor(
    private readonly credentials: NodeCredentials,
    private readonly nonces: NodeRequestNonces,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    suppressed: SuppressedAuditRecords,
    private readonly reflector: Reflector,
  ) {
    this.budget = new AuditBudget({}, (reason) => suppressed.add('node.request-refused', reason));
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<Request & WithRawBody & { node?: NodeCaller }>();
    const response = http.getResponse<Response>();
    try {
      const quarantinedToo = this.reflector.getAllAndOverride<boolean | undefined>(NODE_QUARANTINED_CALLER, [context.getHandler(), context.getClass()]) === true;
      request.node = await this.authenticate(request, quarantinedToo);
      return true;
    } catch (error) {
      if (error instanceof NodeRequestError) {
        response.setHeader('WWW-Authenticate', NODE_AUTH_SCHEME);
      }
      throw error;
    }
  }

  private async authenticate(request: Request & WithRawBody, quarantinedToo: boolean): Promise<NodeCaller> {
    const body = rawBodyOf(request);
    if (body === undefined) {
      throw new NodeRequestError('node.malformed', 'a signed node request sends its body as Content-Type: application/json');
    }
    let found: LiveNodeCredential | undefined;
    const verdict = await verifyNodeRequest(request.rawHeaders, request.method, request.originalUrl, body, {
      now: this.clock.now(),
      maxSkewSeconds: NODE_REQUEST_MAX_SKEW_SECONDS,
      lookup: async (credentialId) => {
        found = await this.credentials.lookup(credentialId);
        return found?.key;
      },
      replay: this.nonces,
    });
    if (!verdict.ok) {
      await this.auditRefusal(request, verdict.refusal, found);
      throw new NodeRequestError(`node.${verdict.refusal.reason}`, verdict.refusal.message);
    }
    // The signature verified, so `found` is the credential it verified under. Its machine's state is
    // checked only now: a caller without the key learns nothing about machines.
    const caller = found!;
    if (!caller.mayCall && !(quarantinedToo && caller.machine.state === 'quarantined')) {
      throw new NodeRequestError(
        'node.machine-not-attested',
        `machine ${caller.machine.id} is ${caller.machine.state}: its node credential authenticates only an attested machine; attest again`,
      );
    }
    return { credentialId: verdict.credentialId, machine: caller.machine };
  }

  /** The audit record of a security-relevant refusal, within the budget; never a header value as received. */
  private async auditRefusal(request: Request, refusal: NodeRequestRefusal, found: LiveNodeCredential | undefined): Promise<void> {
    if (!AUDITED.has(refusal.reason)) {
      return;
    }
    const take = this.budget.take(refusal.reason, this.clock.now().getTime());
    if (take === undefined) {
      return;
    }
    if (take.suppressed > 0) {
      this.logger.warn({ reason: refusal.reason, suppressed: take.suppressed }, 'node request refusals left out of the audit log (budget per minute)');
    }
    await this.audit.append({
      actor: refusal.credentialId === undefined ? 'node:unidentified' : `node-credential:${refusal.credentialId}`,
      action: 'node.request-refused',
      subject: found === undefined ? '' : `machine:${found.machine.id}`,
      outcome: 'refused',
      details: {
        reason: refusal.reason,
        method: request.method,
        // The path as routed (the signature's grammar checked it before any audited refusal), without the query.
        path: request.path,
        ...(take.suppressed > 0 ? { suppressed: take.suppressed } : {}),
      },
    });
  }
}
