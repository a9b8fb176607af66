import type { Command } from 'commander';
import { CliError } from './cli-error';
import { EXIT } from './exit-codes';

/** `--server URL --token T`, shared by every server command (DESIGN §3). */
export interface ServerOptions {
  server: string;
  token: string;
}

/**
 * Adds the options every server command takes. The token may also come from RACKSEAL_TOKEN so it
 * need not appear in `ps` output or shell history; --token wins when both are given.
 */
export function withServerOptions(command: Command): Command {
  return command
    .requiredOption('--server <url>', 'control plane base URL, e.g. https://rackseal.example:8443')
    .option('--token <token>', 'operator bearer token (default: $RACKSEAL_TOKEN)');
}

/** A refusal by the server (4xx after authentication, e.g. 400 validation or 404), with its status. */
export class ServerRequestError extends CliError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(EXIT.usage, message);
    this.name = 'ServerRequestError';
  }
}

export interface RequestOptions {
  readonly query?: Readonly<Record<string, string | number | boolean | undefined>>;
  readonly body?: unknown;
  /** Statuses the caller handles itself (returned, not thrown), besides 2xx. */
  readonly accept?: readonly number[];
  /** Per-request timeout; default 60 s. */
  readonly timeoutMs?: number;
}

export interface ServerResponse<T> {
  readonly status: number;
  readonly body: T;
}

/**
 * The operator API from the CLI: base URL + bearer token + JSON, with errors an operator can act on.
 * Every failure is a CliError with exit 2 (usage / unreachable / refused request), so commands only
 * decide what a successful answer means (their own exit 0 or 1).
 *   - unreachable server / timeout / non-JSON reply → "cannot reach …" / "unexpected reply …"
 *   - 401 → the token is missing, unknown or revoked
 *   - 403 → the server's message (it names the missing scope)
 *   - other 4xx → the server's message, status attached (ServerRequestError)
 *   - 5xx → the status and the server's errorId, if any
 */
export class ServerClient {
  readonly baseUrl: URL;

  constructor(
    server: string,
    private readonly token: string,
  ) {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw CliError.usage(`--server ${JSON.stringify(server)} is not a URL (expected e.g. http://localhost:8080)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw CliError.usage(`--server ${JSON.stringify(server)} must be an http:// or https:// URL`);
    }
    if (!url.pathname.endsWith('/')) {
      url.pathname = `${url.pathname}/`;
    }
    this.baseUrl = url;
    if (token.trim() === '') {
      throw CliError.usage('an operator token is required: --token T or RACKSEAL_TOKEN');
    }
  }

  /** From `--server`/`--token` (or RACKSEAL_TOKEN). */
  static fromOptions(options: { server?: string; token?: string }): ServerClient {
    const token = options.token ?? process.env.RACKSEAL_TOKEN ?? '';
    if (options.server === undefined || options.server === '') {
      throw CliError.usage('--server URL is required');
    }
    return new ServerClient(options.server, token);
  }

  get<T>(path: string, options: Omit<RequestOptions, 'body'> = {}): Promise<ServerResponse<T>> {
    return this.request<T>('GET', path, options);
  }

  post<T>(path: string, body: unknown, options: Omit<RequestOptions, 'body'> = {}): Promise<ServerResponse<T>> {
    return this.request<T>('POST', path, { ...options, body });
  }

  delete<T>(path: string, options: Omit<RequestOptions, 'body'> = {}): Promise<ServerResponse<T>> {
    return this.request<T>('DELETE', path, options);
  }

  /** `path` is relative to the base URL, e.g. `v1/vendor-cas`; segments must already be encoded. */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<ServerResponse<T>> {
    const url = new URL(path.replace(/^\/+/, ''), this.baseUrl);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) {
        url.searchParams.set(key, String(value));
      }
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
    }
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: options.body === undefined ? undefined : JSON.stringify(options.body),
        signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
      });
    } catch (error) {
      throw CliError.usage(`cannot reach ${this.baseUrl.origin}: ${describeFetchError(error)}`);
    }
    const text = await response.text();
    let body: unknown = undefined;
    if (text !== '') {
      try {
        body = JSON.parse(text);
      } catch {
        if (response.ok) {
          throw CliError.usage(`unexpected reply from ${url.origin}${url.pathname} (HTTP ${response.status}, not JSON): is --server the rackseal control plane?`);
        }
      }
    }
    if (response.ok || options.accept?.includes(response.status) === true) {
      return { status: response.status, body: body as T };
    }
    const message = serverMessage(body) ?? (text.slice(0, 200) || response.statusText);
    if (response.status === 401) {
      throw CliError.usage('the server refused the token (401): it is missing, unknown or revoked');
    }
    if (response.status === 403) {
      throw new ServerRequestError(403, `forbidden (403): ${message}`);
    }
    if (response.status >= 400 && response.status < 500) {
      throw new ServerRequestError(response.status, `${method} ${url.pathname} refused (${response.status}): ${message}`);
    }
    const errorId = typeof body === 'object' && body !== null && typeof (body as { errorId?: unknown }).errorId === 'string' ? ` (errorId ${(body as { errorId: string }).errorId})` : '';
    throw CliError.usage(`server error ${response.status} on ${method} ${url.pathname}: ${message}${errorId}`);
  }
}

function serverMessage(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null) {
    return undefined;
  }
  const message = (body as { message?: unknown }).message;
  if (typeof message === 'string') {
    return message;
  }
  if (Array.isArray(message)) {
    return message.map(String).join('; ');
  }
  return undefined;
}

function describeFetchError(error: unknown): string {
  if (error instanceof Error) {
    if (error.name === 'TimeoutError' || error.name === 'AbortError') {
      return 'timed out';
    }
    const cause = (error as Error & { cause?: { code?: string; message?: string } }).cause;
    return cause?.code ?? cause?.message ?? error.message;
  }
  return String(error);
}
