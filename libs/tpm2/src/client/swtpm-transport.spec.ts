/**
 * SwtpmTcpTransport's exchange discipline against an in-process TCP server that plays swtpm's data
 * channel and records what it sees: one command on the wire at a time, answers matched to the
 * command that asked, a single deadline timer, and connections that failed dropped for good.
 * (Response framing, truncation and size limits: test/tpm2-transport.test.ts.)
 */
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { SwtpmTcpTransport } from './swtpm-transport';
import type { TpmTransportError } from './tpm-errors';

const HOST = '127.0.0.1';

/** TPM2_GetRandom(n), and a response whose n bytes all carry `fill`. */
const getRandom = (n: number) => Buffer.from(`80010000000c0000017b${n.toString(16).padStart(4, '0')}`, 'hex');
function answer(n: number, fill: number): Buffer {
  const response = Buffer.alloc(12 + n, fill);
  response.writeUInt16BE(0x8001, 0);
  response.writeUInt32BE(response.length, 2);
  response.writeUInt32BE(0, 6);
  response.writeUInt16BE(n, 10);
  return response;
}

interface Received {
  readonly socket: Socket;
  readonly connection: number;
  readonly command: Buffer;
}

/** A fake swtpm: every whole command becomes a Received; the test decides when and what to answer. */
class FakeSwtpm {
  readonly received: Received[] = [];
  /** Per connection: how many commands came before the previous one on it was answered. */
  readonly overlaps: number[] = [];
  readonly closed: number[] = [];
  private readonly waiters: (() => void)[] = [];
  private readonly unanswered = new Map<Socket, number>();
  private connections = 0;

  private constructor(readonly server: Server) {}

  static async start(): Promise<FakeSwtpm> {
    const fake: FakeSwtpm = new FakeSwtpm(createServer((socket) => fake.accept(socket)));
    fake.server.listen(0, HOST);
    await once(fake.server, 'listening');
    return fake;
  }

  get port(): number {
    return (this.server.address() as { port: number }).port;
  }

  private accept(socket: Socket): void {
    const connection = ++this.connections;
    this.overlaps[connection] = 0;
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 10 && buffered.length >= buffered.readUInt32BE(2)) {
        const size = buffered.readUInt32BE(2);
        const pending = this.unanswered.get(socket) ?? 0;
        if (pending > 0) {
          this.overlaps[connection]! += 1;
        }
        this.unanswered.set(socket, pending + 1);
        this.received.push({ socket, connection, command: Buffer.from(buffered.subarray(0, size)) });
        buffered = buffered.subarray(size);
        this.waiters.splice(0).forEach((wake) => wake());
      }
    });
    socket.on('close', () => this.closed.push(connection));
    socket.on('error', () => undefined);
  }

  /** Resolves once `count` commands in all have come in. */
  async commands(count: number): Promise<Received[]> {
    while (this.received.length < count) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.received.slice(0, count);
  }

  reply(to: Received, bytes: Buffer): void {
    this.unanswered.set(to.socket, (this.unanswered.get(to.socket) ?? 1) - 1);
    to.socket.write(bytes);
  }

  async stop(): Promise<void> {
    this.server.close();
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SwtpmTcpTransport exchanges (fake swtpm)', () => {
  let fake: FakeSwtpm;
  let transport: SwtpmTcpTransport;

  beforeEach(async () => {
    fake = await FakeSwtpm.start();
  });

  afterEach(async () => {
    await transport.close();
    await fake.stop();
  });

  it('puts concurrent commands on the wire one at a time, each answered with its own response', async () => {
    transport = new SwtpmTcpTransport(HOST, fake.port, 5000);
    const results = [1, 2, 3].map((n) => transport.transmit(getRandom(n)));
    for (let i = 1; i <= 3; i += 1) {
      const [latest] = (await fake.commands(i)).slice(-1);
      // The next command must not arrive before this one is answered.
      await sleep(20);
      expect(fake.received).toHaveLength(i);
      fake.reply(latest!, answer(latest!.command.readUInt16BE(10), 0xa0 + i));
    }
    expect((await Promise.all(results)).map((r) => r.toString('hex'))).toEqual([answer(1, 0xa1), answer(2, 0xa2), answer(3, 0xa3)].map((r) => r.toString('hex')));
    expect(fake.received.map((r) => r.command.toString('hex'))).toEqual([getRandom(1), getRandom(2), getRandom(3)].map((c) => c.toString('hex')));
    expect(fake.overlaps[1]).toBe(0);
    expect(new Set(fake.received.map((r) => r.connection))).toEqual(new Set([1]));
  });

  it('takes a response whose header and body come in separate chunks, and returns one-chunk responses whole', async () => {
    transport = new SwtpmTcpTransport(HOST, fake.port, 5000);
    const split = transport.transmit(getRandom(20));
    const [first] = await fake.commands(1);
    const response = answer(20, 0x77);
    fake.reply(first!, response.subarray(0, 4));
    await sleep(10);
    first!.socket.write(response.subarray(4, 11));
    await sleep(10);
    first!.socket.write(response.subarray(11));
    expect(await split).toEqual(response);
    const whole = transport.transmit(getRandom(2));
    fake.reply((await fake.commands(2))[1]!, answer(2, 0x01));
    expect(await whole).toEqual(answer(2, 0x01));
  });

  it('drops a connection that sends bytes no command asked for; the next command gets its own answer on a new one', async () => {
    transport = new SwtpmTcpTransport(HOST, fake.port, 5000);
    const first = transport.transmit(getRandom(4));
    const [asked] = await fake.commands(1);
    fake.reply(asked!, answer(4, 0x11));
    expect(await first).toEqual(answer(4, 0x11));
    // A stale answer nobody is waiting for.
    asked!.socket.write(answer(4, 0xee));
    await once(asked!.socket, 'close');
    const second = transport.transmit(getRandom(4));
    const [, next] = await fake.commands(2);
    expect(next!.connection).toBe(2);
    fake.reply(next!, answer(4, 0x22));
    expect(await second).toEqual(answer(4, 0x22));
  });

  it('a command that times out drops its connection, so its late answer cannot be taken for the next command\'s', async () => {
    transport = new SwtpmTcpTransport(HOST, fake.port, 100);
    const error = await transport.transmit(getRandom(8)).catch((e: unknown) => e as TpmTransportError);
    expect(error).toMatchObject({ name: 'TpmTransportError', problem: 'timeout', message: `swtpm:${HOST}:${fake.port}: no response within 100 ms` });
    const [late] = await fake.commands(1);
    await once(late!.socket, 'close');
    expect(fake.closed).toEqual([1]);
    const next = transport.transmit(getRandom(8));
    const [, asked] = await fake.commands(2);
    // The late answer goes nowhere: its connection is gone.
    late!.socket.write(answer(8, 0xdd));
    fake.reply(asked!, answer(8, 0x42));
    expect(await next).toEqual(answer(8, 0x42));
    expect(asked!.connection).toBe(2);
  });

  it('one deadline timer: armed by an earlier command, it lets a later one run to its own deadline, then times out a hung one', async () => {
    transport = new SwtpmTcpTransport(HOST, fake.port, 1000);
    const first = transport.transmit(getRandom(1));
    fake.reply((await fake.commands(1))[0]!, answer(1, 0x01));
    await first;
    // The timer armed for the first command fires 1000 ms after it; the second command is sent
    // 600 ms after the first and answered 600 ms later, between that firing and its own deadline.
    await sleep(600);
    const second = transport.transmit(getRandom(2));
    const [, asked] = await fake.commands(2);
    await sleep(600);
    fake.reply(asked!, answer(2, 0x02));
    expect(await second).toEqual(answer(2, 0x02));
    // A third command that swtpm never answers still times out, on the same connection's timer.
    await expect(transport.transmit(getRandom(3))).rejects.toMatchObject({ problem: 'timeout' });
    expect(fake.received.map((r) => r.connection)).toEqual([1, 1, 1]);
  });

  it('close() with a command on the wire rejects it as "closed"', async () => {
    transport = new SwtpmTcpTransport(HOST, fake.port, 5000);
    const pending = transport.transmit(getRandom(4));
    await fake.commands(1);
    await transport.close();
    await expect(pending).rejects.toMatchObject({
      name: 'TpmTransportError',
      problem: 'closed',
      message: `swtpm:${HOST}:${fake.port}: connection closed before a complete response`,
    });
  });
});
