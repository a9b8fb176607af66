/**
 * An HTTP/1.1 request on a raw socket, for what an HTTP client library will not do: declare a
 * Content-Length and send less (a stalled or slow client), and read the answer while still sending.
 */
import { connect, type Socket } from 'node:net';

/** What came back on a raw connection, read until the server closed it. */
export interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
  /** Bytes of the whole response (status line, headers, body). */
  readonly size: number;
}

/** The response in `raw` once it is complete (head and Content-Length body), else undefined. */
function parseResponse(raw: Buffer): RawResponse | undefined {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) {
    return undefined;
  }
  const [statusLine, ...headerLines] = raw.subarray(0, end).toString('latin1').split('\r\n');
  const headers = Object.fromEntries(headerLines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
  const length = Number(headers['content-length'] ?? 0);
  if (raw.length < end + 4 + length) {
    return undefined;
  }
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine ?? '')?.[1]),
    headers,
    body: raw.subarray(end + 4, end + 4 + length).toString('utf8'),
    size: end + 4 + length,
  };
}

/**
 * An upload on a raw socket: the request head, then whatever the test sends, possibly far less than
 * the declared Content-Length (a stalled client). `response` settles with the server's answer, read
 * while still sending, as an HTTP client does; `closed` when the server has closed the connection.
 */
export class RawUpload {
  readonly socket: Socket;
  readonly response: Promise<RawResponse>;
  readonly closed: Promise<void>;

  constructor(baseUrl: string, path: string, headers: Record<string, string | number>, method = 'POST') {
    const url = new URL(baseUrl);
    this.socket = connect(Number(url.port), url.hostname);
    let received = Buffer.alloc(0);
    // the server may stop reading while the client still writes (it refused the file early)
    this.socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => this.socket.once('close', () => resolve()));
    this.response = new Promise((resolve, reject) => {
      this.socket.on('data', (chunk) => {
        received = Buffer.concat([received, chunk]);
        const response = parseResponse(received);
        if (response !== undefined) {
          resolve(response);
        }
      });
      this.socket.once('close', () => reject(new Error(`connection closed without a complete response: ${JSON.stringify(received.toString('latin1').slice(0, 200))}`)));
    });
    this.response.catch(() => undefined);
    const head = [`${method} ${path} HTTP/1.1`, `Host: ${url.host}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
    this.socket.write(`${head.join('\r\n')}\r\n\r\n`);
  }

  /** Writes `data`, waiting for the socket to take it (a refusing server may have closed it: then it stops). */
  async send(data: string | Buffer, chunkSize = 64 * 1024): Promise<void> {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    for (let i = 0; i < bytes.length && !this.socket.destroyed; i += chunkSize) {
      if (!this.socket.write(bytes.subarray(i, i + chunkSize))) {
        await new Promise<void>((resolve) => {
          this.socket.once('drain', resolve);
          this.socket.once('close', resolve);
        });
      }
    }
  }
}
