import { openTransport, TpmClient, type TpmTransport } from '@rackseal/tpm2';
import { LocalCa } from '../test/support/local-ca';
import { startSwtpm, type SwtpmMachine } from '../test/support/swtpm';

/**
 * The swtpm side of the benchmarks that talk to a TPM (tpm2-client, unlock): one swtpm with a
 * sha256 bank made by the test fixture (EK persisted, EK certificates from a local CA) for the
 * length of a run, a client for a moment (swtpm serves one connection at a time), and a transport
 * that times each command's round trip, so a run splits into time in swtpm and time in our code.
 */

/** Runs `work` with a fresh swtpm (sha256 bank), stopped and its CA removed whatever happens. */
export async function withBenchSwtpm<T>(work: (tpm: SwtpmMachine) => Promise<T>): Promise<T> {
  const ca = await LocalCa.create();
  let tpm: SwtpmMachine | undefined;
  try {
    tpm = await startSwtpm({ ca, pcrBanks: ['sha256'] });
    return await work(tpm);
  } finally {
    await tpm?.stop();
    await ca.remove();
  }
}

/** A client on `device` for the length of `work`, closed after. */
export async function withSwtpmClient<T>(device: string, work: (client: TpmClient) => Promise<T>): Promise<T> {
  const client = new TpmClient(await openTransport(device));
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}

/** Counts the commands sent and sums their round trips (swtpm's work plus one loopback exchange each). */
export class TimingTransport implements TpmTransport {
  tpmMs = 0;
  commands = 0;

  constructor(private readonly inner: TpmTransport) {}

  get description(): string {
    return this.inner.description;
  }

  async transmit(command: Buffer): Promise<Buffer> {
    const t0 = performance.now();
    try {
      return await this.inner.transmit(command);
    } finally {
      this.tpmMs += performance.now() - t0;
      this.commands += 1;
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
