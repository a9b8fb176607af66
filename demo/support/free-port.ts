/**
 * Free TCP ports for test servers. The OS picks the port (bind to 0), so parallel jest workers never
 * collide on a hard-coded number. There is still a window between closing our probe socket and the
 * real server binding; callers that start external servers retry on EADDRINUSE.
 */
import { createConnection, createServer, type Server } from 'node:net';

export const LOCALHOST = '127.0.0.1';

function listen(port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host, exclusive: true }, () => resolve(server));
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function boundPort(server: Server): number {
  const addr = server.address();
  if (addr === null || typeof addr === 'string') {
    throw new Error('server has no TCP address');
  }
  return addr.port;
}

/** One port that was free a moment ago. */
export async function freePort(host = LOCALHOST): Promise<number> {
  const server = await listen(0, host);
  const port = boundPort(server);
  await close(server);
  return port;
}

/**
 * Two consecutive free ports (p, p+1). swtpm needs this: the tss2 "swtpm" TCTI (tpm2-tools) always
 * talks to the control channel on data port + 1 (it sends CMD_SET_LOCALITY before every command),
 * so the control port cannot be chosen independently.
 */
export async function freePortPair(host = LOCALHOST, attempts = 50): Promise<readonly [number, number]> {
  for (let i = 0; i < attempts; i++) {
    const first = await listen(0, host);
    const port = boundPort(first);
    try {
      if (port >= 65535) {
        continue;
      }
      const second = await listen(port + 1, host).catch(() => undefined);
      if (second === undefined) {
        continue;
      }
      await close(second);
      return [port, port + 1];
    } finally {
      await close(first);
    }
  }
  throw new Error(`no pair of consecutive free ports on ${host} after ${attempts} attempts`);
}

/** True if something accepts TCP connections on host:port right now. */
export function isListening(port: number, host = LOCALHOST, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    const done = (result: boolean): void => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
