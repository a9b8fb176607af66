import { open } from 'node:fs/promises';
import { TpmTransportError, type TransportProblem } from './tpm-errors';
import { CommandQueue, MAX_RESPONSE_SIZE, RESPONSE_HEADER_SIZE, type TpmTransport } from './transport';

/**
 * What a TPM character device offers (Linux tpm_dev / tpmrm_dev): write one whole command, then
 * one read returns the whole response. Injected so the contract can be tested without a device.
 */
export interface DeviceFile {
  write(data: Buffer): Promise<number>;
  read(into: Buffer): Promise<number>;
  close(): Promise<void>;
}

/**
 * Opens the device read-write, and refuses anything that is not a character device before a byte is
 * written: `--tpm /etc/passwd` must not get a TPM command written over its first bytes. fstat on the
 * opened descriptor, so the file checked is the file written.
 */
async function openDeviceFile(path: string): Promise<DeviceFile> {
  const handle = await open(path, 'r+');
  if (!(await handle.stat()).isCharacterDevice()) {
    await handle.close();
    throw Object.assign(new Error(`${path} is not a character device`), { code: NOT_A_DEVICE });
  }
  return {
    write: async (data) => (await handle.write(data, 0, data.length, null)).bytesWritten,
    read: async (into) => (await handle.read(into, 0, into.length, null)).bytesRead,
    close: () => handle.close(),
  };
}

/** Our code for an opened path that is a regular file, directory or FIFO rather than a TPM device. */
const NOT_A_DEVICE = 'ENOTCHR';

const OPEN_PROBLEMS: Readonly<Record<string, [TransportProblem, string]>> = {
  [NOT_A_DEVICE]: ['not-found', 'not a character device: a TPM is /dev/tpmrm0 or /dev/tpm0 (or swtpm:HOST:PORT); nothing was written to it'],
  ENOENT: ['not-found', 'no such device: is a TPM present and its driver (tpm_tis, tpm_crb) loaded?'],
  EACCES: ['permission', 'permission denied: run as root or as a member of the tss group'],
  EPERM: ['permission', 'permission denied: run as root or as a member of the tss group'],
  EBUSY: ['busy', 'device busy: another process (e.g. tpm2-abrmd) holds it; use /dev/tpmrm0, the kernel resource manager'],
};

/**
 * /dev/tpmrm0 (kernel resource manager: transient objects and sessions are flushed when the file is
 * closed) or /dev/tpm0 (raw; a single user). A timed-out command leaves the device in an unknown
 * state, so the transport closes it and refuses further commands.
 */
export class CharacterDeviceTransport implements TpmTransport {
  private readonly queue = new CommandQueue();
  private broken: TpmTransportError | undefined;

  private constructor(
    readonly description: string,
    private readonly file: DeviceFile,
    private readonly timeoutMs: number,
  ) {}

  static async open(
    path: string,
    options: { timeoutMs?: number; openFile?: (path: string) => Promise<DeviceFile> } = {},
  ): Promise<CharacterDeviceTransport> {
    let file: DeviceFile;
    try {
      file = await (options.openFile ?? openDeviceFile)(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      const [problem, message] = OPEN_PROBLEMS[code] ?? ['io', (error as Error).message];
      throw new TpmTransportError(path, problem, message);
    }
    return new CharacterDeviceTransport(path, file, options.timeoutMs ?? 120_000);
  }

  transmit(command: Buffer): Promise<Buffer> {
    return this.queue.run(() => this.exchange(command));
  }

  private async exchange(command: Buffer): Promise<Buffer> {
    if (this.broken !== undefined) {
      throw this.broken;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new TpmTransportError(this.description, 'timeout', `no response within ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    try {
      return await Promise.race([this.writeThenRead(command), timeout]);
    } catch (error) {
      if (error instanceof TpmTransportError && error.problem === 'timeout') {
        this.broken = error;
        await this.file.close().catch(() => undefined);
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  private async writeThenRead(command: Buffer): Promise<Buffer> {
    const written = await this.io(() => this.file.write(command));
    if (written !== command.length) {
      throw new TpmTransportError(this.description, 'protocol', `device took ${written} of ${command.length} command bytes`);
    }
    const buffer = Buffer.alloc(MAX_RESPONSE_SIZE);
    const read = await this.io(() => this.file.read(buffer));
    if (read < RESPONSE_HEADER_SIZE) {
      throw new TpmTransportError(this.description, 'protocol', `response of ${read} bytes is shorter than a header`);
    }
    const size = buffer.readUInt32BE(2);
    if (size !== read) {
      throw new TpmTransportError(this.description, 'protocol', `response header says ${size} bytes, the read returned ${read}`);
    }
    return Buffer.from(buffer.subarray(0, read));
  }

  private async io(operation: () => Promise<number>): Promise<number> {
    try {
      return await operation();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? '';
      const [problem, message] = OPEN_PROBLEMS[code] ?? ['io', (error as Error).message];
      throw new TpmTransportError(this.description, problem, message);
    }
  }

  async close(): Promise<void> {
    if (this.broken === undefined) {
      this.broken = new TpmTransportError(this.description, 'closed', 'transport closed');
      await this.file.close();
    }
  }
}
