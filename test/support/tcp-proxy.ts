import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { LOCALHOST } from './free-port';

/**
 * Sees (and may rewrite) the bytes of every relayed connection: `fromClient` what goes to the
 * service, `fromService` what comes back. Each returns what to forward (possibly nothing yet, for
 * an interceptor that frames messages). One interceptor per connection, made by the factory.
 */
export interface RelayInterceptor {
  fromClient(chunk: Buffer): Buffer;
  fromService(chunk: Buffer): Buffer;
}

/**
 * A TCP relay in front of a real service, which a test can cut and restore. Cutting closes the
 * listener and resets every relayed connection, which is exactly what a client sees when the
 * service behind it goes down (refused new connections, broken old ones), without stopping the
 * shared server other suites are using. With an interceptor it also records or alters the bytes
 * (a bus sniffer, a tampering bus).
 */
export class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
    private readonly intercept: (() => RelayInterceptor) | undefined,
  ) {}

  static async start(target: { host: string; port: number }, intercept?: () => RelayInterceptor): Promise<TcpProxy> {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, LOCALHOST, resolve));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const proxy = new TcpProxy(port, target, intercept);
    await proxy.restore();
    return proxy;
  }

  /** Rewrites a connection URL so it goes through this proxy. */
  via(url: string): string {
    const parsed = new URL(url);
    parsed.hostname = LOCALHOST;
    parsed.port = String(this.port);
    return parsed.toString();
  }

  async restore(): Promise<void> {
    if (this.server !== undefined) {
      return;
    }
    const server = createServer((client) => {
      const upstream = createConnection(this.target);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      if (this.intercept === undefined) {
        client.pipe(upstream).pipe(client);
        return;
      }
      const interceptor = this.intercept();
      client.on('data', (chunk: Buffer) => forward(upstream, interceptor.fromClient(chunk)));
      upstream.on('data', (chunk: Buffer) => forward(client, interceptor.fromService(chunk)));
      client.on('end', () => upstream.end());
      upstream.on('end', () => client.end());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, LOCALHOST, resolve);
    });
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) {
      socket.resetAndDestroy();
    }
    this.sockets.clear();
    if (server !== undefined) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}

function forward(to: Socket, bytes: Buffer): void {
  if (bytes.length > 0 && !to.destroyed) {
    to.write(bytes);
  }
}
