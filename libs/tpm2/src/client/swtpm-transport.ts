import { connect, type Socket } from 'node:net';
import { TpmTransportError, type TransportProblem } from './tpm-errors';
import { MAX_RESPONSE_SIZE, RESPONSE_HEADER_SIZE, type TpmTransport } from './transport';

/** One transmit() call: queued, then on the wire until its whole response is in. */
interface Exchange {
  readonly command: Buffer;
  readonly resolve: (response: Buffer) => void;
  readonly reject: (error: Error) => void;
  /** When the response is overdue, on the performance.now() clock; 0 until the command is written. */
  deadline: number;
}

/**
 * swtpm's TCP data channel (`swtpm socket --server type=tcp`): raw TPM commands, several per
 * connection, one at a time (Part 1 §18). The connection is opened on first use; a connection that
 * failed (closed, timed out, answered out of protocol) is dropped, so nothing late on it can be
 * taken for a later command's answer, and the next command opens a fresh one.
 *
 * Built for swtpm's tens-of-microseconds commands: one 'data' listener per connection feeds the
 * exchange on the wire, a response that arrives in one chunk is returned as it is, and a single
 * timer checks deadlines rather than one timer per command.
 */
export class SwtpmTcpTransport implements TpmTransport {
  readonly description: string;
  private socket: Socket | undefined;
  private current: Exchange | undefined;
  private readonly waiting: Exchange[] = [];
  /** Response chunks of the exchange on the wire, while its response spans several chunks. */
  private chunks: Buffer[] = [];
  private received = 0;
  /** Armed while an exchange may be on the wire; fires at the earliest deadline it knows of. */
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly timeoutMs = 30_000,
  ) {
    this.description = `swtpm:${host}:${port}`;
  }

  transmit(command: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      const exchange: Exchange = { command, resolve, reject, deadline: 0 };
      if (this.current === undefined) {
        this.start(exchange);
      } else {
        this.waiting.push(exchange);
      }
    });
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    const socket = this.socket;
    if (socket !== undefined) {
      // Dropped first, so its 'close' event is not taken for a failure of a later connection.
      this.socket = undefined;
      socket.destroy();
      if (this.current !== undefined && this.current.deadline !== 0) {
        this.finish(this.error('closed', 'connection closed before a complete response'));
      }
    }
  }

  private start(exchange: Exchange): void {
    this.current = exchange;
    const socket = this.socket;
    if (socket !== undefined && !socket.destroyed) {
      this.send(socket, exchange);
      return;
    }
    this.open().then(
      (opened) => {
        this.socket = opened;
        this.send(opened, exchange);
      },
      (error: Error) => this.finish(error),
    );
  }

  private send(socket: Socket, exchange: Exchange): void {
    exchange.deadline = performance.now() + this.timeoutMs;
    if (this.timer === undefined) {
      this.timer = setTimeout(this.onTimer, this.timeoutMs);
      // The socket keeps the process alive while a command is on the wire; an idle timer must not.
      this.timer.unref();
    }
    // Last: the write wakes swtpm, and this process should be waiting for the answer by then.
    socket.write(exchange.command);
  }

  /** Times out the exchange on the wire once its deadline passed; otherwise waits for it. */
  private readonly onTimer = (): void => {
    this.timer = undefined;
    const exchange = this.current;
    if (exchange === undefined || exchange.deadline === 0) {
      return;
    }
    const left = exchange.deadline - performance.now();
    if (left > 0) {
      this.timer = setTimeout(this.onTimer, Math.ceil(left));
      this.timer.unref();
      return;
    }
    this.finish(this.error('timeout', `no response within ${this.timeoutMs} ms`));
  };

  private open(): Promise<Socket> {
    return new Promise<Socket>((resolve, reject) => {
      const socket = connect({ host: this.host, port: this.port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(this.error('timeout', `no connection within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.setNoDelay(true);
        socket.on('data', (chunk: Buffer) => this.onData(socket, chunk));
        socket.on('close', () => this.onClose(socket));
        resolve(socket);
      });
      socket.on('error', (error: NodeJS.ErrnoException) => {
        // After 'connect', errors are followed by 'close', which fails the exchange on the wire.
        clearTimeout(timer);
        const refused = error.code === 'ECONNREFUSED';
        reject(this.error(refused ? 'not-found' : 'io', refused ? 'connection refused: is swtpm running on this port?' : error.message));
      });
    });
  }

  private onData(socket: Socket, chunk: Buffer): void {
    const exchange = this.current;
    if (socket !== this.socket || exchange === undefined || exchange.deadline === 0) {
      // Bytes no command asked for: the connection is out of step with swtpm.
      this.drop(socket);
      return;
    }
    if (this.received === 0 && chunk.length >= RESPONSE_HEADER_SIZE) {
      // The usual case: the whole response (or at least its header) in one chunk.
      this.check(chunk.readUInt32BE(2), chunk.length, chunk);
      return;
    }
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.received < RESPONSE_HEADER_SIZE) {
      return;
    }
    if (this.chunks[0]!.length < RESPONSE_HEADER_SIZE) {
      // The size field itself was split: join what came so far, once.
      this.chunks = [Buffer.concat(this.chunks, this.received)];
    }
    this.check(this.chunks[0]!.readUInt32BE(2), this.received, chunk);
  }

  /** Decides on the response so far: `received` bytes, the last of them in `last`. */
  private check(size: number, received: number, last: Buffer): void {
    if (size < RESPONSE_HEADER_SIZE || size > MAX_RESPONSE_SIZE) {
      this.finish(this.error('protocol', `response claims ${size} bytes`));
    } else if (received > size) {
      this.finish(this.error('protocol', `${received - size} byte(s) beyond the response`));
    } else if (received === size) {
      this.finish(undefined, this.chunks.length === 0 ? last : Buffer.concat(this.chunks, size));
    } else if (this.chunks.length === 0) {
      this.chunks.push(last);
      this.received = received;
    }
  }

  private onClose(socket: Socket): void {
    if (socket !== this.socket) {
      return;
    }
    this.socket = undefined;
    if (this.current !== undefined && this.current.deadline !== 0) {
      this.finish(this.error('closed', 'connection closed before a complete response'));
    }
  }

  /** Ends the exchange on the wire, then puts the next waiting one on the wire. */
  private finish(error: Error | undefined, response?: Buffer): void {
    const exchange = this.current!;
    this.current = undefined;
    this.chunks = [];
    this.received = 0;
    if (error === undefined) {
      exchange.resolve(response!);
    } else {
      if (this.socket !== undefined) {
        this.drop(this.socket);
      }
      exchange.reject(error);
    }
    const next = this.waiting.shift();
    if (next !== undefined) {
      this.start(next);
    }
  }

  private drop(socket: Socket): void {
    if (socket === this.socket) {
      this.socket = undefined;
    }
    socket.destroy();
  }

  private error(problem: TransportProblem, message: string): TpmTransportError {
    return new TpmTransportError(this.description, problem, message);
  }
}
