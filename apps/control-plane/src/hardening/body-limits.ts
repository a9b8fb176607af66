import { POLICY_BODY_LIMIT_BYTES, RUNTIME_POLICY_BODY_LIMIT_BYTES } from '@rackseal/api-contracts';
import {
  ATTESTATION_LIMITS,
  DELIVERIES_POLL_ROUTE,
  DELIVERIES_ROUTE,
  FINISH_ATTESTATION_BODY_LIMIT_BYTES,
  KEY_CERTIFICATION_LIMITS,
  KEY_CHALLENGES_ROUTE,
  KEYS_ROUTE,
  MAILBOX_MAX_CARRIED_ACKS,
  nodeApiPath,
} from '@rackseal/node-api-contracts';
import { json, type NextFunction, type Request, type RequestHandler, type Response } from 'express';

/** Base64 length of `bytes` bytes (RFC 4648 §4). */
const base64 = (bytes: number): number => 4 * Math.ceil(bytes / 3);

/** Room for a body's field names, punctuation and small fields around its large ones. */
const ENVELOPE_BYTES = 16 * 1024;

/** One carried ack in JSON: `{"id":"<36>","proof":"<44>"},` is 98 bytes; room for spaces a client may add. */
const CARRIED_ACK_BYTES = 160;

/** The body limit of JSON routes not listed in ROUTE_BODY_LIMITS (the operator API's forms): configure-http-app.ts's JSON_BODY_LIMIT. */
export const DEFAULT_JSON_BODY_LIMIT_BYTES = 1024 * 1024;

/** How a route's body is read: before routing (json), after the guards (deferred), or streamed by the route itself. */
export type BodyReading = 'json' | 'deferred' | 'stream';

export interface RouteBodyLimit {
  readonly method: 'POST' | 'PUT';
  readonly path: string;
  /** Bytes; undefined: INVENTORY_MAX_FILE_BYTES (configured). */
  readonly limitBytes: number | undefined;
  readonly reading: BodyReading;
  /** What bounds it, for docs/guide/hardening.md. */
  readonly why: string;
}

/**
 * Every route whose body limit is not the default, in one table (docs/guide/hardening.md, "Body
 * limits"): the node API's fleet-facing calls get what their largest valid body needs and no more
 * (an ack carries a 32-byte proof: 1 MiB of it would be a free amplifier for an unauthenticated
 * flood), and the few routes that carry files get theirs. A body over its limit is 413
 * `request.too-large` — refused by its Content-Length before it is read, else when the limit is
 * crossed. Routes not listed take DEFAULT_JSON_BODY_LIMIT_BYTES.
 */
export const ROUTE_BODY_LIMITS: readonly RouteBodyLimit[] = [
  {
    method: 'POST',
    path: nodeApiPath('attestations'),
    limitBytes: base64(ATTESTATION_LIMITS.certificateBytes * (1 + ATTESTATION_LIMITS.intermediates)) + 2 * base64(ATTESTATION_LIMITS.publicAreaBytes) + ENVELOPE_BYTES,
    reading: 'json',
    why: 'an EK certificate and its intermediates, the EK and AK public areas (ATTESTATION_LIMITS)',
  },
  {
    method: 'POST',
    path: nodeApiPath('attestations/:id/finish'),
    limitBytes: FINISH_ATTESTATION_BODY_LIMIT_BYTES,
    reading: 'json',
    why: 'the machine\'s TCG event log (1 MiB) and its new IMA entries (8 MiB), in base64, with the quote',
  },
  {
    method: 'POST',
    path: nodeApiPath(`${DELIVERIES_ROUTE}/:id/ack`),
    limitBytes: 4 * 1024,
    reading: 'json',
    why: 'one 32-byte proof of receipt',
  },
  {
    method: 'POST',
    path: nodeApiPath(DELIVERIES_POLL_ROUTE),
    limitBytes: MAILBOX_MAX_CARRIED_ACKS * CARRIED_ACK_BYTES + 1024,
    reading: 'json',
    why: `up to ${MAILBOX_MAX_CARRIED_ACKS} carried acks, each a delivery id and a 32-byte proof`,
  },
  {
    method: 'POST',
    path: nodeApiPath(KEY_CHALLENGES_ROUTE),
    limitBytes: 4 * 1024,
    reading: 'json',
    why: 'a key certification challenge request (no large field)',
  },
  {
    method: 'POST',
    path: nodeApiPath(KEYS_ROUTE),
    limitBytes: base64(KEY_CERTIFICATION_LIMITS.publicAreaBytes + KEY_CERTIFICATION_LIMITS.attestBytes + KEY_CERTIFICATION_LIMITS.signatureBytes) + ENVELOPE_BYTES,
    reading: 'json',
    why: 'a TPM2_Certify of the node key: public area, attestation and signature (KEY_CERTIFICATION_LIMITS)',
  },
  {
    method: 'PUT',
    path: '/v1/groups/:group/policy',
    limitBytes: POLICY_BODY_LIMIT_BYTES,
    reading: 'deferred',
    why: 'up to 16 allowed sets, each with a canary\'s event log; read only after the bearer guard',
  },
  {
    method: 'PUT',
    path: '/v1/groups/:group/runtime-policy',
    limitBytes: RUNTIME_POLICY_BODY_LIMIT_BYTES,
    reading: 'deferred',
    why: 'a Keylime runtime policy of a whole distribution (libs/ima takes up to 64 MiB); read only after the bearer guard',
  },
  {
    method: 'POST',
    path: '/v1/inventory/imports',
    limitBytes: undefined,
    reading: 'stream',
    why: 'the inventory CSV, streamed into the import (INVENTORY_MAX_FILE_BYTES, default 1 GiB)',
  },
];

type Verify = NonNullable<Parameters<typeof json>[0]>['verify'];

/**
 * Mounts the JSON parsers of the node API routes of ROUTE_BODY_LIMITS whose limit is below the
 * default (the finish call's and the deferred policy body are mounted by configureHttpApp). Each
 * runs for its exact path and method only, before the general parser, which then skips the body
 * (body-parser reads a body once). `verify` keeps the raw bytes a node signature covers.
 */
export function mountNodeBodyLimits(app: { use(path: string, handler: RequestHandler): unknown }, verify: Verify): void {
  for (const route of ROUTE_BODY_LIMITS) {
    if (route.reading !== 'json' || route.limitBytes === undefined || route.limitBytes >= DEFAULT_JSON_BODY_LIMIT_BYTES) {
      continue;
    }
    const parser = json({ limit: route.limitBytes, verify });
    app.use(route.path, (request: Request, response: Response, next: NextFunction) =>
      // Exact path and method: `app.use` matches a path's prefix too (the start route is the finish route's prefix).
      request.method === route.method && (request.path === '/' || request.path === '') ? parser(request, response, next) : next(),
    );
  }
}
