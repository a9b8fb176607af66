/**
 * The TPM client's transports and its error reporting:
 * - CharacterDeviceTransport (/dev/tpmrm0, /dev/tpm0) against a test double of the Linux TPM
 *   character device contract (tpm_dev_common.c: a write takes one whole command; the next read
 *   returns that command's whole response; a second write before the read is refused);
 * - SwtpmTcpTransport against a local fake TCP server that splits, truncates or withholds answers;
 * - openTransport's DEVICE syntax;
 * - real TPM refusals forced on swtpm, decoded into TpmError with the right name and position.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import {
  CharacterDeviceTransport,
  type DeviceFile,
  EK_TEMPLATE_ECC_L2,
  getHandles,
  getRandom,
  nvReadPublic,
  openTransport,
  passwordAuth,
  policyAuth,
  SwtpmTcpTransport,
  TPM_ALG_ID,
  TPM_ECC_CURVE,
  TPM_HT,
  TPM_RH,
  TPM_SE,
  TPMA_OBJECT,
  type EccPublic,
  TpmClient,
  TpmDeviceSyntaxError,
  TpmError,
  TpmTransportError,
  tpm2Create,
  tpm2CreatePrimary,
  tpm2FlushContext,
  tpm2ReadPublic,
  tpm2StartAuthSession,
} from '@rackseal/tpm2';
import { LOCALHOST } from './support/free-port';
import { type SwtpmMachine, useSwtpms } from './support/swtpm';
import { tpm2 } from './support/tpm2-tools';

jest.setTimeout(30_000);

/** A TPM2_GetRandom(n) command and a response carrying `bytes`. */
const getRandomCommand = (n: number) => Buffer.from(`80010000000c0000017b${n.toString(16).padStart(4, '0')}`, 'hex');
function getRandomResponse(bytes: Buffer): Buffer {
  const response = Buffer.alloc(12 + bytes.length);
  response.writeUInt16BE(0x8001, 0);
  response.writeUInt32BE(response.length, 2);
  response.writeUInt32BE(0, 6);
  response.writeUInt16BE(bytes.length, 10);
  bytes.copy(response, 12);
  return response;
}

/**
 * The kernel's TPM character device contract, as a test double: write() must carry one whole
 * command and is refused while a response is pending; read() returns the pending response whole.
 * `respond` decides what the "TPM" answers (or never answers).
 */
class FakeTpmDevice implements DeviceFile {
  readonly log: string[] = [];
  closed = false;
  private pending: Promise<Buffer> | undefined;

  constructor(
    private readonly respond: (command: Buffer) => Buffer | Promise<Buffer>,
    private readonly accept: (command: Buffer) => number = (command) => command.length,
  ) {}

  async write(data: Buffer): Promise<number> {
    if (this.closed) {
      throw Object.assign(new Error('EBADF: file closed'), { code: 'EBADF' });
    }
    if (this.pending !== undefined) {
      // tpm_dev_common.c: a write while a response waits to be read fails with EBUSY.
      throw Object.assign(new Error('EBUSY: device busy'), { code: 'EBUSY' });
    }
    this.log.push(`write ${data.length}`);
    const taken = this.accept(data);
    this.pending = Promise.resolve(this.respond(Buffer.from(data.subarray(0, taken))));
    return taken;
  }

  async read(into: Buffer): Promise<number> {
    this.log.push(`read ${into.length}`);
    const pending = this.pending;
    if (pending === undefined) {
      return 0;
    }
    const response = await pending;
    this.pending = undefined;
    return response.copy(into);
  }

  async close(): Promise<void> {
    this.log.push('close');
    this.closed = true;
  }
}

const openFake = (device: FakeTpmDevice, timeoutMs?: number) => CharacterDeviceTransport.open('/dev/tpmrm0', { openFile: async () => device, timeoutMs });

function errno(code: string): Error {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (error: unknown) => error,
  );
}

describe('CharacterDeviceTransport (test double of the Linux TPM device)', () => {
  it('writes one whole command, then reads one whole response with a 4096-byte buffer; concurrent callers are serialized', async () => {
    const device = new FakeTpmDevice((command) => getRandomResponse(Buffer.alloc(command.readUInt16BE(10), 0xab)));
    const client = new TpmClient(await openFake(device));
    const results = await Promise.all([getRandom(client, 4), getRandom(client, 8), getRandom(client, 16)]);
    expect(results.map((r) => r.toString('hex'))).toEqual(['ab'.repeat(4), 'ab'.repeat(8), 'ab'.repeat(16)]);
    expect(device.log).toEqual(['write 12', 'read 4096', 'write 12', 'read 4096', 'write 12', 'read 4096']);
    await client.close();
    expect(device.log.at(-1)).toBe('close');
  });

  it('refuses a short write (the device took part of the command) as a protocol error', async () => {
    const device = new FakeTpmDevice(() => getRandomResponse(Buffer.alloc(4)), (command) => command.length - 2);
    const error = await rejection((await openFake(device)).transmit(getRandomCommand(4)));
    expect(error).toBeInstanceOf(TpmTransportError);
    expect(error).toMatchObject({ problem: 'protocol', message: '/dev/tpmrm0: device took 10 of 12 command bytes' });
  });

  it.each([
    ['a read shorter than a header', Buffer.from('800100', 'hex'), 'response of 3 bytes is shorter than a header'],
    ['a partial response (header says more than the read returned)', getRandomResponse(Buffer.alloc(8)).subarray(0, 15), 'response header says 20 bytes, the read returned 15'],
    ['an oversized response (header says more than 4096)', Buffer.concat([Buffer.from('80010000200000000000', 'hex'), Buffer.alloc(5000)]), 'response header says 8192 bytes, the read returned 4096'],
    ['a response whose header says less than was read', Buffer.concat([getRandomResponse(Buffer.alloc(2)), Buffer.alloc(3)]), 'response header says 14 bytes, the read returned 17'],
  ])('refuses %s as a protocol error', async (_label, answer, message) => {
    const transport = await openFake(new FakeTpmDevice(() => answer));
    await expect(transport.transmit(getRandomCommand(8))).rejects.toMatchObject({ name: 'TpmTransportError', problem: 'protocol', message: `/dev/tpmrm0: ${message}` });
  });

  it('times out a read that never returns, closes the device and refuses every later command', async () => {
    const device = new FakeTpmDevice(() => new Promise<Buffer>(() => undefined));
    const transport = await openFake(device, 50);
    const started = Date.now();
    const first = await rejection(transport.transmit(getRandomCommand(8)));
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(first).toMatchObject({ name: 'TpmTransportError', problem: 'timeout', message: '/dev/tpmrm0: no response within 50 ms' });
    expect(device.closed).toBe(true);
    // The TPM may still be executing that command: nothing more is sent on this transport.
    const logged = device.log.length;
    await expect(transport.transmit(getRandomCommand(8))).rejects.toBe(first);
    expect(device.log).toHaveLength(logged);
  });

  it('refuses commands after close()', async () => {
    const device = new FakeTpmDevice(() => getRandomResponse(Buffer.alloc(1)));
    const transport = await openFake(device);
    await transport.close();
    await expect(transport.transmit(getRandomCommand(1))).rejects.toMatchObject({ problem: 'closed', message: '/dev/tpmrm0: transport closed' });
  });

  it.each([
    ['ENOENT', 'not-found', '/dev/tpmrm0: no such device: is a TPM present and its driver (tpm_tis, tpm_crb) loaded?'],
    ['EACCES', 'permission', '/dev/tpmrm0: permission denied: run as root or as a member of the tss group'],
    ['EBUSY', 'busy', '/dev/tpmrm0: device busy: another process (e.g. tpm2-abrmd) holds it; use /dev/tpmrm0, the kernel resource manager'],
    ['EIO', 'io', '/dev/tpmrm0: EIO: simulated'],
  ])('opening with %s says so clearly (%s)', async (code, problem, message) => {
    const error = await rejection(CharacterDeviceTransport.open('/dev/tpmrm0', { openFile: async () => Promise.reject(errno(code)) }));
    expect(error).toBeInstanceOf(TpmTransportError);
    expect(error).toMatchObject({ device: '/dev/tpmrm0', problem, message });
  });

  it('maps an errno from write or read the same way', async () => {
    const device = new FakeTpmDevice(() => getRandomResponse(Buffer.alloc(1)));
    device.write = async () => Promise.reject(errno('EBUSY'));
    await expect((await openFake(device)).transmit(getRandomCommand(1))).rejects.toMatchObject({ problem: 'busy' });
  });

  it('a real missing device node is "not-found", through openTransport too', async () => {
    await expect(openTransport('/dev/rackseal-no-such-tpm')).rejects.toMatchObject({
      name: 'TpmTransportError',
      problem: 'not-found',
      message: '/dev/rackseal-no-such-tpm: no such device: is a TPM present and its driver (tpm_tis, tpm_crb) loaded?',
    });
  });
});

/** A fake swtpm data socket: `handle` answers each whole command (12-byte GetRandom) on a socket. */
async function fakeSwtpm(handle: (socket: Socket, command: Buffer, index: number) => void): Promise<{ server: Server; port: number; connections: () => number }> {
  let connections = 0;
  let commands = 0;
  const server = createServer((socket) => {
    connections += 1;
    let buffered = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      while (buffered.length >= 10 && buffered.length >= buffered.readUInt32BE(2)) {
        const size = buffered.readUInt32BE(2);
        handle(socket, buffered.subarray(0, size), commands++);
        buffered = buffered.subarray(size);
      }
    });
    socket.on('error', () => undefined);
  });
  server.listen(0, LOCALHOST);
  await once(server, 'listening');
  const address = server.address();
  if (address === null || typeof address === 'string') {
    throw new Error('no TCP address');
  }
  return { server, port: address.port, connections: () => connections };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('SwtpmTcpTransport (fake TCP server)', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.close();
    }
  });

  async function serve(handle: Parameters<typeof fakeSwtpm>[0]) {
    const fake = await fakeSwtpm(handle);
    servers.push(fake.server);
    return fake;
  }

  it('reassembles a response split across chunks, several commands on one connection', async () => {
    const fake = await serve((socket, command) => {
      const response = getRandomResponse(Buffer.alloc(command.readUInt16BE(10), 0x5c));
      void (async () => {
        // Split inside the header, then inside the body: the size field arrives in two pieces.
        for (const [from, to] of [[0, 3], [3, 11], [11, response.length]] as const) {
          socket.write(response.subarray(from, to));
          await sleep(5);
        }
      })();
    });
    const transport = new SwtpmTcpTransport(LOCALHOST, fake.port, 2000);
    const client = new TpmClient(transport);
    expect((await getRandom(client, 16)).toString('hex')).toBe('5c'.repeat(16));
    expect((await getRandom(client, 3)).toString('hex')).toBe('5c'.repeat(3));
    expect(fake.connections()).toBe(1);
    await client.close();
  });

  it('a connection closed mid-response is "closed"; the next command reconnects', async () => {
    const fake = await serve((socket, command, index) => {
      const response = getRandomResponse(Buffer.alloc(command.readUInt16BE(10), 1));
      if (index === 0) {
        socket.end(response.subarray(0, 7));
      } else {
        socket.write(response);
      }
    });
    const transport = new SwtpmTcpTransport(LOCALHOST, fake.port, 2000);
    await expect(transport.transmit(getRandomCommand(4))).rejects.toMatchObject({
      name: 'TpmTransportError',
      problem: 'closed',
      message: `swtpm:${LOCALHOST}:${fake.port}: connection closed before a complete response`,
    });
    expect(await transport.transmit(getRandomCommand(4))).toEqual(getRandomResponse(Buffer.alloc(4, 1)));
    expect(fake.connections()).toBe(2);
    await transport.close();
  });

  it('times out when the server never answers, and recovers on a fresh connection', async () => {
    const fake = await serve((socket, command, index) => {
      if (index > 0) {
        socket.write(getRandomResponse(Buffer.alloc(command.readUInt16BE(10))));
      }
    });
    const transport = new SwtpmTcpTransport(LOCALHOST, fake.port, 100);
    await expect(transport.transmit(getRandomCommand(2))).rejects.toMatchObject({ problem: 'timeout', message: `swtpm:${LOCALHOST}:${fake.port}: no response within 100 ms` });
    expect(await transport.transmit(getRandomCommand(2))).toHaveLength(14);
    expect(fake.connections()).toBe(2);
    await transport.close();
  });

  it.each([
    ['bytes beyond the response', (r: Buffer) => Buffer.concat([r, Buffer.from([0])]), '1 byte(s) beyond the response'],
    ['a size beyond 4096', () => Buffer.from('80010000200000000000', 'hex'), 'response claims 8192 bytes'],
    ['a size smaller than a header', () => Buffer.from('80010000000400000000', 'hex'), 'response claims 4 bytes'],
  ])('refuses %s as a protocol error', async (_label, mangle, message) => {
    const fake = await serve((socket, command) => socket.write(mangle(getRandomResponse(Buffer.alloc(command.readUInt16BE(10))))));
    const transport = new SwtpmTcpTransport(LOCALHOST, fake.port, 1000);
    await expect(transport.transmit(getRandomCommand(2))).rejects.toMatchObject({ problem: 'protocol', message: `swtpm:${LOCALHOST}:${fake.port}: ${message}` });
    await transport.close();
  });

  it('a port nobody listens on is "not-found", naming swtpm', async () => {
    const fake = await serve(() => undefined);
    const port = fake.port;
    await new Promise<void>((resolve) => fake.server.close(() => resolve()));
    const client = new TpmClient(await openTransport(`swtpm:${LOCALHOST}:${port}`));
    await expect(getRandom(client, 1)).rejects.toMatchObject({
      name: 'TpmTransportError',
      problem: 'not-found',
      message: `swtpm:${LOCALHOST}:${port}: connection refused: is swtpm running on this port?`,
    });
  });
});

describe('openTransport DEVICE syntax', () => {
  it.each(['tpm0', 'dev/tpmrm0', 'swtpm:', 'swtpm:localhost', 'swtpm:localhost:', 'swtpm:localhost:0', 'swtpm:localhost:65536', 'swtpm:localhost:2321x', 'tcp:localhost:2321', ''])(
    'refuses %j, saying what is accepted',
    async (device) => {
      const error = await rejection(openTransport(device));
      expect(error).toBeInstanceOf(TpmDeviceSyntaxError);
      expect((error as Error).message).toBe(`unrecognised TPM device ${JSON.stringify(device)}: use /dev/tpmrm0, /dev/tpm0 or swtpm:HOST:PORT`);
    },
  );

  it('accepts swtpm:HOST:PORT, with a bracketed IPv6 host', async () => {
    const v4 = await openTransport('swtpm:127.0.0.1:2321');
    const v6 = await openTransport('swtpm:[::1]:2322');
    expect(v4).toBeInstanceOf(SwtpmTcpTransport);
    expect([(v4 as SwtpmTcpTransport).host, (v4 as SwtpmTcpTransport).port]).toEqual(['127.0.0.1', 2321]);
    expect([(v6 as SwtpmTcpTransport).host, (v6 as SwtpmTcpTransport).port, v6.description]).toEqual(['::1', 2322, 'swtpm:::1:2322']);
  });
});

/** An ECC P-256 storage parent (restricted decrypt): quick to create on swtpm, and it authorizes Create. */
function storageTemplate(attributes: number, authPolicy = Buffer.alloc(0)): EccPublic {
  return {
    ...EK_TEMPLATE_ECC_L2,
    objectAttributes: TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin | TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt | attributes,
    authPolicy,
    parameters: { ...EK_TEMPLATE_ECC_L2.parameters, curveID: TPM_ECC_CURVE.TPM_ECC_NIST_P256 },
    unique: { x: Buffer.alloc(0), y: Buffer.alloc(0) },
  };
}

const CHILD: EccPublic = storageTemplate(TPMA_OBJECT.userWithAuth | TPMA_OBJECT.noDA);

describe('TPM refusals decoded (swtpm)', () => {
  const fixture = useSwtpms(1);

  async function withClient<T>(machine: SwtpmMachine, use: (client: TpmClient) => Promise<T>): Promise<T> {
    const client = new TpmClient(await openTransport(machine.device));
    try {
      return await use(client);
    } finally {
      await client.close();
    }
  }

  async function refusal(promise: Promise<unknown>): Promise<TpmError> {
    const error = await rejection(promise);
    expect(error).toBeInstanceOf(TpmError);
    return error as TpmError;
  }

  afterEach(async () => {
    // Every test leaves the TPM as it found it: no transient object, no session.
    const tpm = fixture.at(0);
    expect((await tpm2(tpm, 'getcap', 'handles-transient')).stdout.toString('utf8').trim()).toBe('');
    expect((await tpm2(tpm, 'getcap', 'handles-loaded-session')).stdout.toString('utf8').trim()).toBe('');
    expect((await tpm2(tpm, 'getcap', 'handles-saved-session')).stdout.toString('utf8').trim()).toBe('');
  });

  it.each([
    { label: 'noDA object', da: TPMA_OBJECT.noDA, name: 'TPM_RC_BAD_AUTH', code: 0x9a2 },
    { label: 'DA-protected object', da: 0, name: 'TPM_RC_AUTH_FAIL', code: 0x98e },
  ])('wrong password on a $label: $name on session 1', async ({ da, name, code }) => {
    await withClient(fixture.at(0), async (client) => {
      const parent = await tpm2CreatePrimary(client, TPM_RH.TPM_RH_OWNER, passwordAuth(), storageTemplate(TPMA_OBJECT.userWithAuth | da), {
        inSensitive: { userAuth: Buffer.from('right'), data: Buffer.alloc(0) },
      });
      try {
        const error = await refusal(tpm2Create(client, parent.objectHandle, passwordAuth(Buffer.from('wrong')), CHILD));
        expect(error.rc).toMatchObject({ name, code, position: { kind: 'session', index: 1 } });
        expect(error.message).toMatch(new RegExp(`^TPM2_Create failed: ${name} \\(0x${code.toString(16)}\\) on session 1: `));
        // The right password works: the refusal was about the password, nothing else.
        await tpm2Create(client, parent.objectHandle, passwordAuth(Buffer.from('right')), CHILD);
      } finally {
        await tpm2FlushContext(client, parent.objectHandle);
      }
    });
  });

  it('a policy session whose digest is not the object\'s authPolicy: TPM_RC_POLICY_FAIL on session 1', async () => {
    await withClient(fixture.at(0), async (client) => {
      // authPolicy some digest no policy command sequence here produced; userWithAuth clear, so
      // only a policy session may authorize the object's USER role.
      const parent = await tpm2CreatePrimary(client, TPM_RH.TPM_RH_OWNER, passwordAuth(), storageTemplate(TPMA_OBJECT.noDA, randomBytes(32)));
      const session = await tpm2StartAuthSession(client, TPM_SE.TPM_SE_POLICY, TPM_ALG_ID.TPM_ALG_SHA256);
      try {
        const error = await refusal(tpm2Create(client, parent.objectHandle, policyAuth(session.sessionHandle), CHILD));
        expect(error.rc).toMatchObject({ name: 'TPM_RC_POLICY_FAIL', code: 0x99d, position: { kind: 'session', index: 1 } });
        // And the password path is closed too, differently: no userWithAuth.
        const password = await refusal(tpm2Create(client, parent.objectHandle, passwordAuth(), CHILD));
        expect(password.rc.name).toBe('TPM_RC_AUTH_UNAVAILABLE');
        expect(password.rc.position).toBeUndefined();
      } finally {
        // A failed command leaves its session loaded (continueSession or not): flush it.
        await tpm2FlushContext(client, session.sessionHandle);
        await tpm2FlushContext(client, parent.objectHandle);
      }
    });
  });

  it('unknown handles: TPM_RC_HANDLE on handle 1; a free transient slot is REFERENCE_H0; outside the slots TPM_RC_VALUE; FlushContext blames parameter 1', async () => {
    await withClient(fixture.at(0), async (client) => {
      const persistent = await refusal(tpm2ReadPublic(client, 0x81000099));
      expect(persistent.rc).toMatchObject({ name: 'TPM_RC_HANDLE', code: 0x18b, position: { kind: 'handle', index: 1 } });
      const nv = await refusal(nvReadPublic(client, 0x01500099));
      expect(nv.rc).toMatchObject({ name: 'TPM_RC_HANDLE', code: 0x18b, position: { kind: 'handle', index: 1 } });
      // swtpm has 3 transient slots, 0x80000000-0x80000002: an empty one is "not loaded"…
      const free = await refusal(tpm2ReadPublic(client, 0x80000001));
      expect(free.rc).toMatchObject({ name: 'TPM_RC_REFERENCE_H0', code: 0x910, warning: true });
      expect(free.rc.position).toBeUndefined();
      // …a handle beyond them does not even unmarshal as a TPMI_DH_OBJECT.
      const outside = await refusal(tpm2ReadPublic(client, 0x80000099));
      expect(outside.rc).toMatchObject({ name: 'TPM_RC_VALUE', code: 0x184, position: { kind: 'handle', index: 1 } });
      // FlushContext takes its handle as a parameter, so the same mistakes blame parameter 1.
      const flush = await refusal(tpm2FlushContext(client, 0x80000001));
      expect(flush.rc).toMatchObject({ name: 'TPM_RC_HANDLE', code: 0x1cb, position: { kind: 'parameter', index: 1 } });
      expect(flush.message).toBe('TPM2_FlushContext failed: TPM_RC_HANDLE (0x1cb) on parameter 1: the handle is not correct for the use');
      const flushOutside = await refusal(tpm2FlushContext(client, 0x80000099));
      expect(flushOutside.rc).toMatchObject({ name: 'TPM_RC_VALUE', code: 0x1c4, position: { kind: 'parameter', index: 1 } });
    });
  });

  it('object memory: CreatePrimary until TPM_RC_OBJECT_MEMORY (0x902), then every transient is flushed', async () => {
    const tpm = fixture.at(0);
    const created: number[] = [];
    const error = await withClient(tpm, async (client) => {
      try {
        for (let i = 0; i < 16; i += 1) {
          created.push((await tpm2CreatePrimary(client, TPM_RH.TPM_RH_OWNER, passwordAuth(), storageTemplate(TPMA_OBJECT.userWithAuth | TPMA_OBJECT.noDA))).objectHandle);
        }
        return undefined;
      } catch (e) {
        return e;
      } finally {
        for (const handle of await getHandles(client, TPM_HT.TPM_HT_TRANSIENT)) {
          await tpm2FlushContext(client, handle);
        }
      }
    });
    expect(error).toBeInstanceOf(TpmError);
    expect((error as TpmError).rc).toMatchObject({ name: 'TPM_RC_OBJECT_MEMORY', code: 0x902, warning: true });
    expect((error as TpmError).rc.position).toBeUndefined();
    expect((error as TpmError).command).toBe('TPM2_CreatePrimary');
    // swtpm (MAX_LOADED_OBJECTS 3) holds three transient objects.
    expect(created).toHaveLength(3);
    expect((await tpm2(tpm, 'getcap', 'handles-transient')).stdout.toString('utf8').trim()).toBe('');
  });
});
