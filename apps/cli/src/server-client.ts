import type { Command } from 'commander';
import { CliError, EXIT } from '@rackseal/command-line';
import { CaFileError, pinnedCaFetch, readCaFile, untrustedCertificateCode } from '@rackseal/command-line/pinned-ca-fetch';
import { safe } from './terminal-text';

/**
 * `--server URL --token T`, shared by every server command (docs/architecture.md §5); both have
 * environment defaults.
 */
export interface ServerOptions {
  server?: string;
  token?: string;
  /** PEM file of the CA the server's certificate must chain to (only it is trusted). */
  serverCa?: string;
}

/**
 * Adds the options every server command takes. The server may come from RACKSEAL_SERVER and the
 * token from RACKSEAL_TOKEN, so neither is typed on every call and the token need not appear in
 * `ps` output or shell history; a flag wins over its variable.
 */
export function withServerOptions(command: Command): Command {
  return command
    .option('--server <url>', 'control plane base URL, e.g. https://rackseal.example:8443 (default: $RACKSEAL_SERVER)')
    .option('--token <token>', 'operator bearer token (default: $RACKSEAL_TOKEN)')
    .option('--server-ca <file>', "PEM file of the CA the server's TLS certificate must chain to; only it is trusted, not the system's CAs (default: $RACKSEAL_SERVER_CA)");
}

/** The command's words after `rackseal`, e.g. `vendor-ca disable`: what errors say was being done. */
export function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c !== null && c.parent !== null; c = c.parent) {
    names.unshift(c.name());
  }
  return names.join(' ');
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
  /** A JSON body. */
  readonly body?: unknown;
  /** A streamed body (e.g. a CSV upload), sent as is with this content type. */
  readonly stream?: { readonly body: ReadableStream<Uint8Array>; readonly contentType: string };
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
 * decide what a successful answer means (their own exit 0 or 1). Errors name the command, not the
 * HTTP call (`vendor-ca disable: no vendor CA matches "0123abcd"`):
 *   - unreachable server / timeout / non-JSON reply → "cannot reach …" / "unexpected reply …"
 *   - 401 → the token is missing, unknown or revoked
 *   - 403 → the server's message (it names the missing scope)
 *   - other 4xx → the server's message, status attached (ServerRequestError)
 *   - 503 → busy / dependency down: nothing changed, and when to retry (Retry-After)
 *   - other 5xx → the status and the server's errorId, if any
 * Server text is shown with control characters escaped.
 */
export class ServerClient {
  readonly baseUrl: URL;
  private readonly token: string;
  /** Node's fetch (the system's CAs), or one that trusts the pinned CA only. */
  private fetch: typeof fetch = fetch;

  /** `action` is what the command is doing, in operator terms (`vendor-ca disable`). */
  constructor(
    server: string,
    token: string,
    readonly action: string,
    serverSource = '--server',
  ) {
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw CliError.usage(`${serverSource} ${JSON.stringify(server)} is not a URL (expected e.g. http://localhost:8080)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw CliError.usage(`${serverSource} ${JSON.stringify(server)} must be an http:// or https:// URL`);
    }
    if (url.username !== '' || url.password !== '') {
      // Not echoed: the part before '@' may be a password.
      throw CliError.usage(`${serverSource} must not contain a user name or password (the operator token goes in --token or RACKSEAL_TOKEN)`);
    }
    if (!url.pathname.endsWith('/')) {
      url.pathname = `${url.pathname}/`;
    }
    this.baseUrl = url;
    this.token = token.trim();
    if (this.token === '') {
      throw CliError.usage('an operator token is required: --token T or RACKSEAL_TOKEN');
    }
    if (!/^[\x21-\x7e]+$/.test(this.token)) {
      // Not echoed, nor left to fetch, whose "invalid header value" error quotes the whole header.
      throw CliError.usage('the operator token (--token or RACKSEAL_TOKEN) holds a character no token has (a line break, control character, space or non-ASCII); check how it was pasted');
    }
  }

  /** From `--server`/`--token`, else RACKSEAL_SERVER/RACKSEAL_TOKEN (empty counts as unset). */
  static fromOptions(options: ServerOptions, action: string): ServerClient {
    const token = nonEmpty(options.token) ?? nonEmpty(process.env.RACKSEAL_TOKEN) ?? '';
    const flag = nonEmpty(options.server);
    const fromEnv = nonEmpty(process.env.RACKSEAL_SERVER);
    if (flag === undefined && fromEnv === undefined) {
      throw CliError.usage('no control plane given: pass --server URL or set RACKSEAL_SERVER');
    }
    const client = new ServerClient(flag ?? fromEnv!, token, action, flag !== undefined ? '--server' : 'RACKSEAL_SERVER');
    const caFile = nonEmpty(options.serverCa) ?? nonEmpty(process.env.RACKSEAL_SERVER_CA);
    if (caFile !== undefined) {
      client.pinCa(caFile);
    }
    return client;
  }

  /** Trusts only the CA in `file` for this server (docs/guide/hardening.md); https:// only. */
  pinCa(file: string): void {
    if (this.baseUrl.protocol !== 'https:') {
      throw CliError.usage(`${this.action}: --server-ca pins the CA of an https:// server; ${this.baseUrl.origin} is not one`);
    }
    try {
      this.fetch = pinnedCaFetch(readCaFile(file));
    } catch (error) {
      throw error instanceof CaFileError ? CliError.usage(`${this.action}: --server-ca: ${error.message}`) : error;
    }
  }

  /** For a command's action handler: its options and its name. */
  static forCommand(command: Command): ServerClient {
    return ServerClient.fromOptions(command.opts<ServerOptions>(), commandPath(command));
  }

  get<T>(path: string, options: Omit<RequestOptions, 'body' | 'stream'> = {}): Promise<ServerResponse<T>> {
    return this.request<T>('GET', path, options);
  }

  post<T>(path: string, body: unknown, options: Omit<RequestOptions, 'body' | 'stream'> = {}): Promise<ServerResponse<T>> {
    return this.request<T>('POST', path, { ...options, body });
  }

  put<T>(path: string, body: unknown, options: Omit<RequestOptions, 'body' | 'stream'> = {}): Promise<ServerResponse<T>> {
    return this.request<T>('PUT', path, { ...options, body });
  }

  patch<T>(path: string, body: unknown, options: Omit<RequestOptions, 'body' | 'stream'> = {}): Promise<ServerResponse<T>> {
    return this.request<T>('PATCH', path, { ...options, body });
  }

  delete<T>(path: string, options: Omit<RequestOptions, 'body' | 'stream'> = {}): Promise<ServerResponse<T>> {
    return this.request<T>('DELETE', path, options);
  }

  /**
   * One path segment from operator input (a fingerprint, an id), encoded. `.`, `..` and the empty
   * string are refused: URL resolution would turn them into a different route (`v1/vendor-cas/..`
   * is `v1/`).
   */
  segment(value: string, what: string): string {
    if (['', '.', '..'].includes(value.trim())) {
      throw this.fail(`${JSON.stringify(value)} is not ${what}`);
    }
    return encodeURIComponent(value);
  }

  /** `path` is relative to the base URL, e.g. `v1/vendor-cas`; segments must already be encoded (see segment). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<ServerResponse<T>> {
    const url = new URL(path.replace(/^\/+/, ''), this.baseUrl);
    for (const [key, value] of Object.entries(options.query ?? {})) {
      if (value !== undefined) {
        url.searchParams.set(key, String(value));
      }
    }
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, accept: 'application/json' };
    let body: RequestInit['body'];
    if (options.stream !== undefined) {
      headers['content-type'] = options.stream.contentType;
      body = options.stream.body;
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.body);
    }
    let response: Response;
    try {
      response = await this.fetch(url, {
        method,
        headers,
        body,
        signal: AbortSignal.timeout(options.timeoutMs ?? 60_000),
        ...(options.stream !== undefined ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch (error) {
      const untrusted = untrustedCertificateCode(error);
      if (untrusted !== undefined) {
        throw this.fail(`${this.baseUrl.origin} is not trusted: its TLS certificate does not verify against ${this.fetch === fetch ? "the system's CAs" : 'the pinned CA (--server-ca)'} (${untrusted}); nothing was sent`);
      }
      const reason = describeFetchError(error);
      if (CONNECTION_LOST.has(reason)) {
        // The request may have been received and acted on: say so rather than "cannot reach".
        throw this.fail(
          `the connection to ${this.baseUrl.origin} was lost before an answer (${reason}): ` +
            (method === 'GET' ? 'try again' : 'the change may or may not have been made; check (e.g. rackseal audit list) before trying again'),
        );
      }
      throw this.fail(`cannot reach ${this.baseUrl.origin}: ${reason}`);
    }
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        // A refusal of rackseal's is always JSON: a text one comes from something else at that
        // address (the metrics listener, a proxy), and its text must not read as rackseal's answer.
        const said = response.ok ? '' : `: ${JSON.stringify(safe(text.trim().slice(0, 200)))}`;
        throw this.fail(`unexpected reply from ${url.origin}${url.pathname} (HTTP ${response.status}, not JSON${said}): is the server the rackseal control plane?`);
      }
    }
    if (response.ok || options.accept?.includes(response.status) === true) {
      return { status: response.status, body: parsed as T };
    }
    const message = safe(serverMessage(parsed) ?? (text.slice(0, 200) || response.statusText));
    if (response.status === 401) {
      throw this.fail('the server refused the token (401): it is missing, unknown or revoked');
    }
    if (response.status === 403) {
      throw new ServerRequestError(403, `${this.action}: forbidden (403): ${message}`);
    }
    if (response.status >= 400 && response.status < 500) {
      throw new ServerRequestError(response.status, `${this.action}: ${message}`);
    }
    if (response.status === 503) {
      // Pool exhausted, import cap reached or a dependency down: the request changed nothing and may be sent again.
      const retryAfter = Number(response.headers.get('retry-after'));
      const when = Number.isInteger(retryAfter) && retryAfter > 0 && retryAfter <= 3600 ? `retry in ${retryAfter} s` : 'retry later';
      throw this.fail(`the control plane is busy or a dependency is down (503): ${message}; nothing was changed, ${when}`);
    }
    const errorId = typeof parsed === 'object' && parsed !== null && typeof (parsed as { errorId?: unknown }).errorId === 'string' ? ` (errorId ${safe((parsed as { errorId: string }).errorId)})` : '';
    throw this.fail(`server error ${response.status}: ${message}${errorId}`);
  }

  private fail(message: string): CliError {
    return CliError.usage(`${this.action}: ${message}`);
  }
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
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

/** Errors (undici's and the socket's codes) of a connection that was made and then broke. */
const CONNECTION_LOST: ReadonlySet<string> = new Set(['UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'ECONNRESET', 'EPIPE']);

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
