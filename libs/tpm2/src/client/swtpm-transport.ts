import { connect, type Socket } from 'node:net';
import { TpmTransportError } from './tpm-errors';
import { CommandQueue, MAX_RESPONSE_SIZE, RESPONSE_HEADER_SIZE, type TpmTransport } from './transport';

/**
 * swtpm's TCP data channel (`swtpm socket --server type=tcp`): raw TPM commands, several per
 * connection. The connection is opened on first use and re-opened after a failure.
 */
export class SwtpmTcpTransport implements TpmTransport {
  readonly description: string;
  private socket: Socket | undefined;
  private readonly queue = new CommandQueue();

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly timeoutMs = 30_000,
  ) {
    this.description = `swtpm:${host}:${port}`;
  }

  transmit(command: Buffer): Promise<Buffer> {
    return this.queue.run(() => this.exchange(command));
  }

  private async connected(): Promise<Socket> {
    if (this.socket !== undefined && !this.socket.destroyed) {
      return this.socket;
    }
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: this.host, port: this.port });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new TpmTransportError(this.description, 'timeout', `no connection within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        const refused = error.code === 'ECONNREFUSED';
        reject(new TpmTransportError(this.description, refused ? 'not-found' : 'io', refused ? 'connection refused: is swtpm running on this port?' : error.message));
      });
    });
    socket.setNoDelay(true);
    socket.on('error', () => undefined);
    this.socket = socket;
    return socket;
  }

  private async exchange(command: Buffer): Promise<Buffer> {
    const socket = await this.connected();
    return new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      let received = 0;
      const finish = (error?: Error, response?: Buffer) => {
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        if (error !== undefined) {
          socket.destroy();
          reject(error);
        } else {
          resolve(response!);
        }
      };
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        received += chunk.length;
        if (received < RESPONSE_HEADER_SIZE) {
          return;
        }
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const size = all.readUInt32BE(2);
        if (size < RESPONSE_HEADER_SIZE || size > MAX_RESPONSE_SIZE) {
          finish(new TpmTransportError(this.description, 'protocol', `response claims ${size} bytes`));
        } else if (received > size) {
          finish(new TpmTransportError(this.description, 'protocol', `${received - size} byte(s) beyond the response`));
        } else if (received === size) {
          finish(undefined, all);
        }
      };
      const onClose = () => finish(new TpmTransportError(this.description, 'closed', 'connection closed before a complete response'));
      const timer = setTimeout(
        () => finish(new TpmTransportError(this.description, 'timeout', `no response within ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      socket.on('data', onData);
      socket.once('close', onClose);
      socket.write(command);
    });
  }

  async close(): Promise<void> {
    this.socket?.destroy();
    this.socket = undefined;
  }
}
