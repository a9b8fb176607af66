import { setTimeout as delay } from 'node:timers/promises';

/**
 * The agent's HTTP client for the node API: JSON in and out, a timeout on every attempt, a bound on
 * the answer's size, and retries with exponential backoff (plus jitter) on what a later attempt can
 * cure — a network error, a timeout, or 503 (its Retry-After honoured, within a cap). A 4xx is the
 * server's answer and is never retried: it comes back as NodeApiRefusal with the server's code and
 * message (error bodies: docs/architecture.md §5, `{ code, message }`).
 */

export interface NodeApiClientOptions {
  /** The control plane's base URL, e.g. `https://rackseal.example` (the node API is below /node/v1). */
  readonly serverUrl: string;
  /** One attempt, connect to last byte. */
  readonly timeoutMs?: number;
  /** Attempts in all, the first included. */
  readonly attempts?: number;
  /** First backoff; doubled each retry up to maxDelayMs, then ±20 % jitter. */
  readonly baseDelayMs?: number;
  readonly maxDelayMs?: number;
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
  constructor(serverUrl: string, reason: string) {
    super(`the server ${serverUrl} answered unexpectedly: ${reason}`);
    this.name = 'NodeApiProtocolError';
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

/** What undici's `fetch failed` hides in its cause, said for a person. */
function networkReason(error: unknown): string {
  // A DOMException from AbortSignal.timeout, told by its name (it need not be this realm's Error).
  const name = (error as { name?: unknown } | undefined)?.name;
  if (name === 'TimeoutError' || name === 'AbortError') {
    return 'no answer in time';
  }
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
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
      return cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
  }
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null) {
    return undefined;
  }
  const ms = /^\d{1,6}$/.test(value.trim()) ? Number(value.trim()) * 1000 : new Date(value).getTime() - Date.now();
  return Number.isFinite(ms) ? Math.min(Math.max(ms, 0), MAX_RETRY_AFTER_MS) : undefined;
}

/** The body, at most MAX_RESPONSE_BYTES, read from the stream rather than trusting Content-Length. */
async function readBounded(response: Response, serverUrl: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let length = 0;
  if (response.body === null) {
    return Buffer.alloc(0);
  }
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      return Buffer.concat(chunks, length);
    }
    length += value.length;
    if (length > MAX_RESPONSE_BYTES) {
      await reader.cancel().catch(() => undefined);
      throw new NodeApiProtocolError(serverUrl, `an answer larger than ${MAX_RESPONSE_BYTES} bytes`);
    }
    chunks.push(Buffer.from(value));
  }
}

function refusalOf(status: number, body: unknown): NodeApiRefusal {
  const record = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
  const code = typeof record.code === 'string' ? record.code : `http-${status}`;
  const message = record.message;
  const lines = Array.isArray(message) ? message.filter((m): m is string => typeof m === 'string') : typeof message === 'string' ? [message] : [];
  return new NodeApiRefusal(status, code, lines[0] ?? `HTTP ${status}`, lines.slice(1));
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

  private async once(method: string, path: string, bytes: Buffer, json: boolean, headers?: (bytes: Buffer) => Record<string, string>): Promise<NodeApiResponse> {
    let response: Response;
    const signal = AbortSignal.timeout(this.timeoutMs);
    try {
      response = await fetch(`${this.serverUrl}${path}`, {
        method,
        headers: { accept: 'application/json', ...(json ? { 'content-type': 'application/json' } : {}), ...(headers?.(bytes) ?? {}) },
        ...(json ? { body: bytes } : {}),
        redirect: 'error',
        signal,
      });
    } catch (error) {
      throw new Retryable(networkReason(error));
    }
    let raw: Buffer;
    try {
      raw = await readBounded(response, this.serverUrl);
    } catch (error) {
      if (error instanceof NodeApiProtocolError) {
        throw error;
      }
      throw new Retryable(networkReason(error));
    }
    if (response.status === 503) {
      throw new Retryable('the server is unavailable (503)', retryAfterMs(response.headers.get('retry-after')));
    }
    let parsed: unknown;
    try {
      parsed = raw.length === 0 ? undefined : JSON.parse(raw.toString('utf8'));
    } catch {
      throw new NodeApiProtocolError(this.serverUrl, `HTTP ${response.status} with a body that is not JSON (is ${this.serverUrl} a rackseal control plane?)`);
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
