import { X509Certificate } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { Agent, request } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';

/** A CA file is a certificate or a short bundle; anything larger is not one. */
const MAX_CA_FILE_BYTES = 1024 * 1024;

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The CA file could not be used: the command says which file and why (exit 2). */
export class CaFileError extends Error {
  constructor(file: string, reason: string) {
    super(`CA file ${file} ${reason}`);
    this.name = 'CaFileError';
  }
}

/**
 * The PEM certificates of a CA file (`--server-ca`, `serverCa:` in agent.yaml): at least one, each
 * one a certificate Node can parse. Its text goes to TLS as the only trust anchors of the connection.
 */
export function readCaFile(file: string): string {
  const bytes = readBounded(file);
  const blocks = bytes.toString('latin1').match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) {
    throw new CaFileError(file, 'holds no PEM certificate (-----BEGIN CERTIFICATE-----)');
  }
  for (const [index, block] of blocks.entries()) {
    try {
      new X509Certificate(block);
    } catch {
      throw new CaFileError(file, `certificate ${index + 1} is not a valid X.509 certificate`);
    }
  }
  return blocks.join('\n');
}

/**
 * At most MAX_CA_FILE_BYTES of a regular file. Opened non-blocking and checked first: a FIFO or a
 * device (/dev/zero) as the CA file would otherwise hang the command, or the agent's `unlock
 * --online` at boot, or read until memory runs out.
 */
function readBounded(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unknown error';
    throw new CaFileError(file, code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`);
  }
  try {
    if (!fstatSync(fd).isFile()) {
      throw new CaFileError(file, 'is not a regular file');
    }
    const buffer = Buffer.alloc(MAX_CA_FILE_BYTES + 1);
    let total = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer, total, buffer.length - total, null);
      } catch (error) {
        throw new CaFileError(file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'unknown error'})`);
      }
      if (n === 0) {
        return buffer.subarray(0, total);
      }
      total += n;
      if (total > MAX_CA_FILE_BYTES) {
        throw new CaFileError(file, `is larger than ${MAX_CA_FILE_BYTES} bytes`);
      }
    }
  } finally {
    closeSync(fd);
  }
}

/** Statuses whose response has no content (RFC 9110 §6.4.1); a web Response refuses a body for them. */
const NO_CONTENT = new Set([101, 103, 204, 205, 304]);

function headersOf(message: IncomingMessage): Headers {
  const headers = new Headers();
  for (let i = 0; i + 1 < message.rawHeaders.length; i += 2) {
    headers.append(message.rawHeaders[i]!, message.rawHeaders[i + 1]!);
  }
  return headers;
}

/** What fetch rejects with: a TypeError whose cause carries the socket's or TLS's error code. */
function fetchFailed(cause: unknown): TypeError {
  return new TypeError('fetch failed', { cause });
}

/**
 * A `fetch` that trusts only `caPem` (RFC 5280 path validation to one of its certificates, and the
 * host name checked against the server certificate, RFC 9110 §4.3.4): a control plane whose
 * certificate does not chain to the pinned CA is refused at the handshake, however many public CAs
 * would vouch for it. Node's built-in fetch has no per-call trust anchors, so this is node:https
 * behind fetch's shape: the clients (the agent's NodeApiClient, the CLI's ServerClient) keep their
 * one code path. https:// only: a pinned CA with a plain-HTTP URL is refused before anything is sent.
 * Redirects are not followed (the callers never follow them).
 */
export function pinnedCaFetch(caPem: string): typeof fetch {
  // One pool per pinned CA: connections are reused across calls, idle ones never keep a process alive.
  const agent = new Agent({ ca: caPem, keepAlive: true, minVersion: 'TLSv1.2' });
  return (async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    if (url.protocol !== 'https:') {
      throw fetchFailed(Object.assign(new Error(`a pinned CA needs an https:// server, not ${url.protocol}//`), { code: 'ERR_PINNED_CA_NEEDS_HTTPS' }));
    }
    const method = (init.method ?? 'GET').toUpperCase();
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const body = init.body;
    if (typeof body === 'string' || body instanceof Uint8Array) {
      headers['content-length'] = String(Buffer.byteLength(body));
    }
    init.signal?.throwIfAborted();
    return new Promise<Response>((resolve, reject) => {
      const outgoing = request(url, { method, headers, agent, ...(init.signal ? { signal: init.signal } : {}) }, (incoming) => {
        const status = incoming.statusCode ?? 0;
        const empty = NO_CONTENT.has(status) || method === 'HEAD';
        if (empty) {
          incoming.resume();
        }
        try {
          resolve(
            new Response(empty ? null : (Readable.toWeb(incoming) as ReadableStream<Uint8Array>), {
              status,
              statusText: incoming.statusMessage ?? '',
              headers: headersOf(incoming),
            }),
          );
        } catch (error) {
          incoming.destroy();
          reject(fetchFailed(error));
        }
      });
      outgoing.on('error', (error) => reject(init.signal?.aborted === true ? init.signal.reason : fetchFailed(error)));
      if (body === undefined || body === null) {
        outgoing.end();
      } else if (typeof body === 'string' || body instanceof Uint8Array) {
        outgoing.end(body);
      } else if (body instanceof ReadableStream) {
        Readable.fromWeb(body as import('node:stream/web').ReadableStream).on('error', (error) => outgoing.destroy(error)).pipe(outgoing);
      } else {
        outgoing.destroy();
        reject(fetchFailed(new Error('unsupported request body type')));
      }
    });
  }) as typeof fetch;
}

/**
 * TLS verification failures (OpenSSL's X509_V_ERR_* names as Node reports them, and the host-name
 * check's): the server is not the one the pinned CA (or the system's) vouches for. Retrying reaches
 * the same server: callers report these at once.
 */
export const UNTRUSTED_CERTIFICATE_CODES: ReadonlySet<string> = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_SIGNATURE_FAILURE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'INVALID_CA',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** The TLS verification code of a fetch failure, when that is what it is. */
export function untrustedCertificateCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } } | undefined)?.cause;
  const code = cause?.code ?? (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && UNTRUSTED_CERTIFICATE_CODES.has(code) ? code : undefined;
}
