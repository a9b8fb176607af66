import { randomBytes } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import { APPROVALS_ROUTE, type ApprovalsResponse, nodeApiPath } from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { untrustedCertificateCode } from '@rackseal/command-line/pinned-ca-fetch';
import { MAX_SERVER_CODE, MAX_SERVER_LINE, serverLines, serverText } from './server-text';
import { serverFetch } from './server-trust';

/**
 * The agent's HTTP client for the node API: JSON in and out, a timeout on every attempt that covers
 * the whole exchange (connect, headers and every byte of the body: a server that answers headers and
 * then trickles its body must not keep the agent forever), a bound on the answer's size, and retries
 * with exponential backoff (plus jitter) on what a later attempt can cure — a network error, a
 * timeout, 429, 502, 503 or 504 (a Retry-After honoured, within a cap). A 4xx is the server's answer
 * and is never retried: it comes back as NodeApiRefusal with the server's code and message (error
 * bodies: docs/architecture.md §5, `{ code, message }`), made printable and bounded (server-text.ts).
 * A peer that does not speak HTTP, or an answer that is not the node API's, is NodeApiProtocolError.
 */

export interface NodeApiClientOptions {
  /** The control plane's base URL, e.g. `https://rackseal.example` (the node API is below /node/v1). */
  readonly serverUrl: string;
  /** One attempt, connect to last byte of the body (default 30 s). */
  readonly timeoutMs?: number;
  /** Attempts in all, the first included. */
  readonly attempts?: number;
  /** First backoff; doubled each retry up to maxDelayMs, then ±20 % jitter. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Largest answer accepted (default MAX_RESPONSE_BYTES); the mailbox's carries envelopes. */
  readonly maxResponseBytes?: number;
  /** Called before each wait, so the command can say what it is doing. */
  readonly onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
}

/** Node API answers are a few KiB; the largest is a refusal explaining a policy mismatch. */
export const MAX_RESPONSE_BYTES = 256 * 1024;

/** A Retry-After longer than this is clipped: the agent would rather ask again. */
const MAX_RETRY_AFTER_MS = 60_000;

/** The server answered 4xx (or another final status) with its code and message. */
export class NodeApiRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    readonly serverMessage: string,
    /** Further lines of the message (a policy mismatch's explanation). */
    readonly lines: readonly string[],
  ) {
    super(`${code}: ${serverMessage}`);
    this.name = 'NodeApiRefusal';
  }
}

/** The server could not be reached, or kept answering 503, through every attempt. */
export class NodeApiUnreachableError extends Error {
  constructor(
    readonly serverUrl: string,
    readonly attempts: number,
    readonly reason: string,
  ) {
    super(`cannot reach the server ${serverUrl}: ${reason} (${attempts} attempt${attempts === 1 ? '' : 's'})`);
    this.name = 'NodeApiUnreachableError';
  }
}

/** The server answered something that is not the node API (not JSON, too large, a 5xx): not retried. */
export class NodeApiProtocolError extends Error {
  constructor(serverUrl: string, reason: string, message = `the server ${serverUrl} answered unexpectedly: ${reason}`) {
    super(message);
    this.name = 'NodeApiProtocolError';
  }
}

/**
 * What answered at the URL is not an HTTP server (undici's llhttp parse errors, HPE_*: an SSH or
 * database port, a TLS server asked in clear) or not a TLS one (https:// to a plain port). Not
 * retried: the next attempt reaches the same thing.
 */
export class NodeApiNotHttpError extends NodeApiProtocolError {
  constructor(serverUrl: string, what: 'HTTP' | 'TLS') {
    super(serverUrl, what, `${serverUrl} did not answer ${what}${what === 'TLS' ? ' (is it an http:// server?)' : ' (is the URL the control plane\'s?)'}`);
    this.name = 'NodeApiNotHttpError';
  }
}

/**
 * The server's certificate does not chain to the pinned CA (`--server-ca`), or to the system's CAs
 * when none is pinned, or does not name the server: not retried, and nothing was sent.
 */
export class NodeApiUntrustedServerError extends NodeApiProtocolError {
  constructor(serverUrl: string, code: string) {
    super(serverUrl, code, `${serverUrl} is not trusted: its TLS certificate does not verify against the pinned CA (--server-ca / serverCa) or the system's (${code}); nothing was sent`);
    this.name = 'NodeApiUntrustedServerError';
  }
}

export interface NodeApiResponse {
  readonly status: number;
  readonly body: unknown;
}

/** A failure a later attempt may cure. */
class Retryable extends Error {
  constructor(
    reason: string,
    readonly retryAfterMs?: number,
  ) {
    super(reason);
  }
}

/** The attempt's deadline passed (the reason the client's own AbortController is aborted with). */
class AttemptTimeout extends Error {
  constructor(timeoutMs: number) {
    super(`no complete answer within ${timeoutMs / 1000} s (the agent's timeout)`);
    this.name = 'AttemptTimeout';
  }
}

/**
 * What undici's `fetch failed` hides in its cause, said for a person. A peer that is not an HTTP (or
 * TLS) server is not a network failure a retry may cure: NodeApiNotHttpError is thrown instead.
 */
function networkReason(error: unknown, serverUrl: string): string {
  if (error instanceof AttemptTimeout) {
    return error.message;
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  const code = cause?.code ?? (error as { code?: unknown }).code;
  if (typeof code === 'string' && code.startsWith('HPE_')) {
    throw new NodeApiNotHttpError(serverUrl, 'HTTP');
  }
  const untrusted = untrustedCertificateCode(error);
  if (untrusted !== undefined) {
    throw new NodeApiUntrustedServerError(serverUrl, untrusted);
  }
  if (code === 'ERR_PINNED_CA_NEEDS_HTTPS') {
    throw new NodeApiProtocolError(serverUrl, 'plain HTTP', `${serverUrl} is a plain-HTTP URL and a server CA is pinned (--server-ca / serverCa): use the server's https:// URL`);
  }
  if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG' || code === 'EPROTO') {
    throw new NodeApiNotHttpError(serverUrl, 'TLS');
  }
  switch (cause?.code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host name not resolved';
    case 'ECONNRESET':
    case 'UND_ERR_SOCKET':
      return 'connection reset';
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'UND_ERR_HEADERS_TIMEOUT':
    case 'UND_ERR_BODY_TIMEOUT':
      return 'no answer in time';
    default:
      return serverText(cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error)), MAX_SERVER_LINE);
  }
}

/** Statuses a later attempt may cure: a proxy whose upstream is down or restarting, a rate limit. */
const RETRIED_STATUSES: Readonly<Record<number, string>> = {
  429: 'the server asks the agent to slow down (HTTP 429)',
  502: 'a proxy in front of the server cannot reach it (HTTP 502)',
  503: 'the server is unavailable (503)',
  504: 'a proxy in front of the server got no answer from it (HTTP 504)',
};

/** `HTTP 413 Payload Too Large`: the status said in words, for an answer that carries no node API error. */
function statusLine(status: number): string {
  const text = STATUS_CODES[status];
  return text === undefined ? `HTTP ${status}` : `HTTP ${status} ${text}`;
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null) {
    return undefined;
  }
  const ms = /^\d{1,6}$/.test(value.trim()) ? Number(value.trim()) * 1000 : new Date(value).getTime() - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

/**
 * The body, at most MAX_RESPONSE_BYTES, read from the stream rather than trusting Content-Length,
 * and within the attempt's deadline: each read races `deadline`, so a body that trickles a byte a
 * second ends with the attempt whatever the HTTP stack does with the fetch's signal once the
 * headers are in; the stream is cancelled (its connection closed) either way.
 */
async function readBounded(response: Response, serverUrl: string, deadline: AbortSignal, maxBytes: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  if (response.body === null) {
    return Buffer.alloc(0);
  }
  const reader = response.body.getReader();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => reject(deadline.reason as Error);
    if (deadline.aborted) {
      onAbort();
    }
    deadline.addEventListener('abort', onAbort, { once: true });
  });
  aborted.catch(() => undefined); // rejected after the body was read whole: nobody waits any more
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) {
        return Buffer.concat(chunks, length);
      }
      length += value.length;
      if (length > maxBytes) {
        throw new NodeApiProtocolError(serverUrl, `an answer larger than ${maxBytes} bytes`);
      }
      chunks.push(Buffer.from(value));
    }
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    throw error;
  } finally {
    deadline.removeEventListener('abort', onAbort!);
  }
}

/** The server's error body as a refusal, its texts made printable and bounded (a hostile server's are not shown raw). */
function refusalOf(status: number, body: unknown): NodeApiRefusal {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const code = typeof record.code === 'string' ? serverText(record.code, MAX_SERVER_CODE) : `http-${status}`;
  const message = record.message;
  const lines = serverLines(Array.isArray(message) ? message.filter((m): m is string => typeof m === 'string') : typeof message === 'string' ? [message] : []);
  return new NodeApiRefusal(status, code, lines[0] ?? statusLine(status), lines.slice(1));
}

export class NodeApiClient {
  readonly serverUrl: string;
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(private readonly options: NodeApiClientOptions) {
    this.serverUrl = options.serverUrl.replace(/\/+$/, '');
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.attempts = options.attempts ?? 5;
    this.baseDelayMs = options.baseDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? 30_000;
  }

  /**
   * Sends `method path` (path from the root, e.g. nodeApiPath('attestations')) with a JSON body,
   * retrying as the class says. 2xx: the parsed body; 4xx and other final statuses: NodeApiRefusal;
   * every attempt failed: NodeApiUnreachableError. `headers` is called per attempt (a signed request
   * needs a fresh nonce each time).
   */
  async send(method: string, path: string, body?: unknown, headers?: (bytes: Buffer) => Record<string, string>): Promise<NodeApiResponse> {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body), 'utf8');
    let last = '';
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await this.once(method, path, bytes, body !== undefined, headers);
      } catch (error) {
        if (!(error instanceof Retryable)) {
          throw error;
        }
        last = error.message;
        if (attempt >= this.attempts) {
          throw new NodeApiUnreachableError(this.serverUrl, attempt, last);
        }
        const backoff = Math.min(this.baseDelayMs * 2 ** (attempt - 1), this.maxDelayMs) * (0.8 + Math.random() * 0.4);
        const delayMs = Math.round(Math.max(backoff, error.retryAfterMs ?? 0));
        this.options.onRetry?.({ attempt, delayMs, reason: last });
        await delay(delayMs);
      }
    }
  }

  /**
   * GET /node/v1/approvals, signed with the machine's node credential: the control plane's signing
   * key, the group's approval epoch and policyRef, and one signed approval per allowed PCR set —
   * what the agent proves its PCR state with (PolicyPCR → LoadExternal → VerifySignature →
   * PolicyAuthorize) before unsealing a `pcr-sealed` envelope. A quarantined machine is refused
   * (NodeApiRefusal `approval.machine-quarantined`).
   */
  async approvals(credential: NodeCredential): Promise<ApprovalsResponse> {
    const path = nodeApiPath(APPROVALS_ROUTE);
    const response = await this.send('GET', path, undefined, (bytes) => signNodeRequest({ credential, method: 'GET', path, body: bytes, now: new Date(), nonce: randomBytes(16) }));
    return response.body as ApprovalsResponse;
  }

  /**
   * One attempt under one deadline, connect to the body's last byte. The deadline is this client's
   * own timer (ref'd, cleared when the attempt ends) rather than AbortSignal.timeout's, which is
   * unref'd and so not what keeps a waiting agent alive.
   */
  private async once(method: string, path: string, bytes: Buffer, json: boolean, headers?: (bytes: Buffer) => Record<string, string>): Promise<NodeApiResponse> {
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new AttemptTimeout(this.timeoutMs)), this.timeoutMs);
    try {
      return await this.exchange(method, path, bytes, json, deadline.signal, headers);
    } finally {
      clearTimeout(timer);
    }
  }

  private async exchange(
    method: string,
    path: string,
    bytes: Buffer,
    json: boolean,
    signal: AbortSignal,
    headers?: (bytes: Buffer) => Record<string, string>,
  ): Promise<NodeApiResponse> {
    let response: Response;
    try {
      response = await serverFetch()(`${this.serverUrl}${path}`, {
        method,
        headers: { accept: 'application/json', ...(json ? { 'content-type': 'application/json' } : {}), ...(headers?.(bytes) ?? {}) },
        ...(json ? { body: bytes } : {}),
        redirect: 'error',
        signal,
      });
    } catch (error) {
      throw new Retryable(networkReason(signal.aborted ? signal.reason : error, this.serverUrl));
    }
    let raw: Buffer;
    try {
      raw = await readBounded(response, this.serverUrl, signal, this.options.maxResponseBytes ?? MAX_RESPONSE_BYTES);
    } catch (error) {
      if (error instanceof NodeApiProtocolError) {
        throw error;
      }
      throw new Retryable(networkReason(signal.aborted ? signal.reason : error, this.serverUrl));
    }
    const retried = RETRIED_STATUSES[response.status];
    if (retried !== undefined) {
      throw new Retryable(retried, retryAfterMs(response.headers.get('retry-after')));
    }
    let parsed: unknown;
    try {
      parsed = raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'));
    } catch {
      throw new NodeApiProtocolError(this.serverUrl, `${statusLine(response.status)} with a body that is not JSON (is ${this.serverUrl} a rackseal control plane, or a proxy in front of it?)`);
    }
    if (response.status >= 200 && response.status < 300) {
      return { status: response.status, body: parsed };
    }
    if (response.status >= 500) {
      const refusal = refusalOf(response.status, parsed);
      throw new NodeApiProtocolError(this.serverUrl, `HTTP ${response.status}: ${refusal.message}`);
    }
    throw refusalOf(response.status, parsed);
  }
}
