import { NODE_API_BASE_PATH } from '@rackseal/node-api-contracts';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** A request whose body bytes were kept as received (node API routes only). */
export interface WithRawBody {
  rawBody?: Buffer;
}

type Verify = (request: IncomingMessage, response: ServerResponse, body: Buffer, encoding: string) => void;

/**
 * Wraps a body parser's `verify` hook to keep the exact bytes of a node API request's body: its
 * signature covers their SHA-256 (libs/node-identity), and the parsed JSON cannot give them back.
 * Operator routes keep nothing (their bodies can be 1 MB and nothing needs the bytes).
 */
export function keepNodeRawBody(verify: Verify): Verify {
  return (request, response, body, encoding) => {
    const url = (request as IncomingMessage & { originalUrl?: string }).originalUrl ?? request.url ?? '';
    if (url.startsWith(`${NODE_API_BASE_PATH}/`)) {
      (request as IncomingMessage & WithRawBody).rawBody = body;
    }
    verify(request, response, body, encoding);
  };
}

/**
 * The bytes of the request body as received: the kept raw body, or no bytes for a request that
 * sent none; undefined when a body was sent but no parser read it (a Content-Type other than JSON).
 */
export function rawBodyOf(request: IncomingMessage & WithRawBody): Buffer | undefined {
  if (request.rawBody !== undefined) {
    return request.rawBody;
  }
  const length = request.headers['content-length'];
  const sent = request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  return sent ? undefined : Buffer.alloc(0);
}
