/**
 * swtpm fixture: software TPM 2.0 "machines" for tests, each manufactured like a real TPM with RSA-2048
 * and ECC P-384 EK certificates (and optionally a P-256 one) signed by a LocalCa the test controls.
 *
 *   const ca = await LocalCa.create();
 *   const [tpm] = await startSwtpms(1, { ca });
 *   ... TPM2TOOLS_TCTI=tpm.tcti, or rackseal-agent DEVICE=tpm.device ...
 *   await tpm.stop();
 *
 * or, inside a jest describe block, `const f = useSwtpms(2)` (test/support/swtpm.ts) which starts them in
 * beforeAll and stops them in afterAll. A process 'exit' hook kills whatever is still running. Shared by
 * the suites, the benches and `npm run demo` (docs/decisions.md, "The demo").
 *
 * swtpm runs as a (non-daemon) child process: we know its pid and exit without pid files, its stderr is
 * at hand when it fails to start, and a Ctrl-C on jest reaches it too (same process group). State lives
 * in an absolute mkdtemp dir under os.tmpdir(). The control port is always data port + 1 because the
 * tss2 swtpm TCTI used by tpm2-tools insists on that.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onWorkerExit } from './exit-guard';
import { freePortPair, LOCALHOST } from './free-port';
import { LocalCa } from './local-ca';
import { runTool, tpm2 } from './tpm2-tools';

export type PcrBank = 'sha1' | 'sha256' | 'sha384' | 'sha512';

const DIGEST_BYTES: Record<PcrBank, number> = { sha1: 20, sha256: 32, sha384: 48, sha512: 64 };

export interface SwtpmOptions {
  /** The "vendor" CA that signs the EK certificates. */
  ca: LocalCa;
  /** PCR banks to activate (swtpm_setup --pcr-banks). swtpm_setup's default is sha256 only. */
  pcrBanks?: readonly PcrBank[];
  /** Also create the ECC P-256 EK (L-2 template) cert and store it in NV 0x01c0000a. */
  p256?: boolean;
}

/** EK certificate files (DER) as written by swtpm_setup --write-ek-cert-files (plus our P-256 one). */
export interface EkCertPaths {
  /** RSA-2048 EK cert, same bytes as NV 0x01c00002 (EK persisted at 0x81010001). */
  rsa: string;
  /** ECC P-384 EK cert, same bytes as NV 0x01c00016 (EK persisted at 0x81010016). */
  ecc: string;
  /** ECC P-256 EK cert, same bytes as NV 0x01c0000a; only with { p256: true }. */
  p256?: string;
}

export const NV_RSA_EK_CERT = 0x01c00002;
export const NV_P256_EK_CERT = 0x01c0000a;
export const NV_P384_EK_CERT = 0x01c00016;
export const NV_PLATFORM_CERT = 0x01c08000;

/** Control channel commands (swtpm's ctrl protocol, not the MS simulator's platform protocol). */
const CMD_INIT = 2;

/** TPM2_Startup(TPM_SU_CLEAR), no sessions. */
const STARTUP_CLEAR = Buffer.from('80010000000c000001440000', 'hex');
/** TPM2_GetRandom(8): a cheap command that proves the TPM answers and is not in failure mode. */
const GET_RANDOM_8 = Buffer.from('80010000000c0000017b0008', 'hex');

const STDERR_KEEP = 8192;
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const IO_TIMEOUT_MS = 10_000;

/** Machines not yet stopped; killed when the jest worker exits so no swtpm outlives it. */
const live = new Set<SwtpmMachine>();

function installExitHook(): void {
  onWorkerExit(killAllLive);
}

function killAllLive(): void {
  for (const m of live) {
    m.killNow();
  }
}

export class SwtpmMachine {
  readonly host = LOCALHOST;
  private stopping: Promise<void> | undefined;

  /** @internal use startSwtpm(s) */
  constructor(
    /** Absolute temp dir holding everything of this TPM; removed by stop(). */
    readonly dir: string,
    /** Absolute swtpm state directory (tpm2-00.permall). */
    readonly stateDir: string,
    readonly ekCertPaths: EkCertPaths,
    readonly port: number,
    /** Always port + 1 (see freePortPair). */
    readonly ctrlPort: number,
    private readonly child: ChildProcess,
    private readonly stderrTail: () => string,
  ) {}

  /** For TPM2TOOLS_TCTI. */
  get tcti(): string {
    return `swtpm:host=${this.host},port=${this.port}`;
  }

  /** The rackseal-agent DEVICE format. */
  get device(): string {
    return `swtpm:${this.host}:${this.port}`;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** True until stop() or the process died. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** swtpm's recent stderr, for diagnostics. */
  get stderr(): string {
    return this.stderrTail();
  }

  rsaEkCertDer(): Promise<Buffer> {
    return readFile(this.ekCertPaths.rsa);
  }

  /** The ECC P-384 EK certificate that swtpm_setup makes. */
  eccEkCertDer(): Promise<Buffer> {
    return readFile(this.ekCertPaths.ecc);
  }

  p256EkCertDer(): Promise<Buffer> {
    if (this.ekCertPaths.p256 === undefined) {
      throw new Error('started without { p256: true }');
    }
    return readFile(this.ekCertPaths.p256);
  }

  /** Send one raw TPM command on the data socket and return the whole response. */
  transmit(command: Buffer): Promise<Buffer> {
    return exchange(this.port, command, (buf) => (buf.length >= 10 ? buf.readUInt32BE(2) : undefined));
  }

  /**
   * Simulate a reboot: ctrl CMD_INIT (TPM2_Init) then TPM2_Startup(CLEAR). PCRs go back to their
   * reset values (zeros for 0-15), transient objects and sessions are gone, NV and persistent keys stay.
   */
  async reboot(): Promise<void> {
    const body = Buffer.alloc(8);
    body.writeUInt32BE(CMD_INIT, 0);
    body.writeUInt32BE(0, 4); // flags: none (no volatile-state deletion needed for a plain reset)
    const res = await exchange(this.ctrlPort, body, () => 4);
    const result = res.readUInt32BE(0);
    if (result !== 0) {
      throw new Error(`swtpm CMD_INIT failed: 0x${result.toString(16)}`);
    }

    const rc = responseCode(await this.transmit(STARTUP_CLEAR));
    if (rc !== 0) {
      throw new Error(`TPM2_Startup(CLEAR) after CMD_INIT failed: 0x${rc.toString(16)}`);
    }
  }

  async extendPcr(index: number, bank: PcrBank, digestHex: string): Promise<void> {
    const hex = digestHex.toLowerCase();
    if (!/^[0-9a-f]*$/.test(hex) || hex.length !== DIGEST_BYTES[bank] * 2) {
      throw new Error(`extendPcr: need ${DIGEST_BYTES[bank]} bytes of hex for ${bank}, got "${digestHex}"`);
    }
    await tpm2(this, 'pcrextend', `${index}:${bank}=${hex}`);
  }

  /** Current PCR value as lowercase hex. */
  async readPcr(index: number, bank: PcrBank): Promise<string> {
    const out = await mkdtemp(join(this.dir, 'pcr-'));
    try {
      // -o writes the raw digest; nicer than parsing the YAML on stdout.
      await tpm2(this, 'pcrread', `${bank}:${index}`, '-o', join(out, 'pcr.bin'));
      const value = await readFile(join(out, 'pcr.bin'));
      if (value.length !== DIGEST_BYTES[bank]) {
        throw new Error(`PCR ${bank}:${index} not available (bank not active?); got ${value.length} bytes`);
      }
      return value.toString('hex');
    } finally {
      await rm(out, { recursive: true, force: true });
    }
  }

  /** SIGTERM (swtpm shuts down gracefully), SIGKILL if it lingers, then delete the dir. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      try {
        if (this.running) {
          const exited = waitForExit(this.child, STOP_TIMEOUT_MS);
          this.child.kill('SIGTERM');
          if (!(await exited)) {
            this.child.kill('SIGKILL');
            await waitForExit(this.child, STOP_TIMEOUT_MS);
          }
        }
      } finally {
        live.delete(this);
        await rm(this.dir, { recursive: true, force: true });
      }
    })();
    return this.stopping;
  }

  /** @internal synchronous last resort for process 'exit'. */
  killNow(): void {
    try {
      if (this.running) {
        this.child.kill('SIGKILL');
      }
    } catch {
      // already gone
    }
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}

/** Manufacture and start one TPM. */
export async function startSwtpm(opts: SwtpmOptions): Promise<SwtpmMachine> {
  installExitHook();
  const dir = await mkdtemp(join(tmpdir(), 'rackseal-swtpm-'));
  let machine: SwtpmMachine | undefined;
  try {
    const stateDir = join(dir, 'state');
    const certsDir = join(dir, 'certs');
    await mkdir(stateDir);
    await mkdir(certsDir);

    const setupArgs = [
      '--tpm2',
      '--tpmstate', stateDir,
      '--create-ek-cert',
      '--create-platform-cert',
      '--lock-nvram',
      '--overwrite',
      '--config', opts.ca.setupConfigPath,
      '--write-ek-cert-files', certsDir,
    ];
    if (opts.pcrBanks !== undefined) {
      setupArgs.push('--pcr-banks', opts.pcrBanks.join(','));
    }
    await runTool('swtpm_setup', setupArgs, { env: opts.ca.env, timeoutMs: 60_000 });

    // File names chosen by swtpm_setup 0.7.1: ek-<keytype>.crt, DER.
    const ekCertPaths: EkCertPaths = {
      rsa: join(certsDir, 'ek-rsa2048.crt'),
      ecc: join(certsDir, 'ek-secp384r1.crt'),
    };

    const launched = await launch(stateDir);
    machine = new SwtpmMachine(dir, stateDir, ekCertPaths, launched.port, launched.ctrlPort, launched.child, launched.stderr);
    live.add(machine);

    if (opts.p256 === true) {
      ekCertPaths.p256 = join(certsDir, 'ek-secp256r1.crt');
      await provisionP256(machine, opts.ca, ekCertPaths.p256);
    }
    return machine;
  } catch (e) {
    if (machine !== undefined) {
      await machine.stop();
    } else {
      await rm(dir, { recursive: true, force: true });
    }
    throw e;
  }
}

/** Start `count` TPMs in parallel; if any fails the others are stopped again. */
export async function startSwtpms(count: number, opts: SwtpmOptions): Promise<SwtpmMachine[]> {
  const results = await Promise.allSettled(Array.from({ length: count }, () => startSwtpm(opts)));
  const started = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed !== undefined) {
    await stopSwtpms(started);
    throw failed.reason;
  }
  return started;
}

export async function stopSwtpms(machines: readonly SwtpmMachine[]): Promise<void> {
  await Promise.all(machines.map((m) => m.stop()));
}

// ---------------------------------------------------------------------------------------------------

interface Launched {
  child: ChildProcess;
  port: number;
  ctrlPort: number;
  stderr: () => string;
}

/**
 * Spawn `swtpm socket` on a fresh port pair and wait until it answers a real TPM command.
 * Retries when another process grabbed a port between our probe and swtpm's bind.
 */
async function launch(stateDir: string, attempts = 5): Promise<Launched> {
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    const [port, ctrlPort] = await freePortPair();
    const child = spawn(
      'swtpm',
      [
        'socket', '--tpm2',
        '--server', `type=tcp,port=${port},bindaddr=${LOCALHOST}`,
        '--ctrl', `type=tcp,port=${ctrlPort},bindaddr=${LOCALHOST}`,
        '--tpmstate', `dir=${stateDir}`,
        // Startup(CLEAR) is sent by swtpm itself, so the TPM is usable at once, like after a boot.
        '--flags', 'not-need-init,startup-clear',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    child.stderr?.on('data', (c: Buffer) => {
      stderr = (stderr + c.toString('utf8')).slice(-STDERR_KEEP);
    });
    const tail = (): string => stderr;
    // Neither the process nor its stderr pipe may keep the test process alive: a forgotten stop()
    // must let jest exit, so that the 'exit' hook can kill swtpm instead of everything hanging.
    child.unref();
    (child.stderr as Socket | null)?.unref();

    try {
      await waitUntilReady(child, port, tail);
      return { child, port, ctrlPort, stderr: tail };
    } catch (e) {
      lastError = e;
      child.kill('SIGKILL');
      await waitForExit(child, STOP_TIMEOUT_MS);
      if (!/address already in use|bind/i.test(stderr)) {
        throw e;
      }
    }
  }
  throw lastError;
}

async function waitUntilReady(child: ChildProcess, port: number, stderr: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let exitInfo: string | undefined;
  child.once('exit', (code, signal) => {
    exitInfo = `exited (code ${String(code)}, signal ${String(signal)})`;
  });
  child.once('error', (e) => {
    exitInfo = `could not start: ${e.message}`;
  });
  for (;;) {
    if (exitInfo !== undefined) {
      throw new Error(`swtpm ${exitInfo}: ${stderr().trim()}`);
    }
    try {
      const rsp = await exchange(port, GET_RANDOM_8, (b) => (b.length >= 10 ? b.readUInt32BE(2) : undefined), 1000);
      const rc = responseCode(rsp);
      // 0x101 = TPM_RC_FAILURE: typically relative state paths under --daemon; never retry that.
      if (rc !== 0) {
        throw new Error(`swtpm answers GetRandom with 0x${rc.toString(16)}: ${stderr().trim()}`);
      }
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ECONNREFUSED' && code !== 'ECONNRESET') {
        throw e;
      }
    }
    if (Date.now() > deadline) {
      throw new Error(`swtpm did not answer on port ${port}: ${stderr().trim()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * One request/response on a fresh TCP connection. `expectedLength` looks at the bytes received so far
 * and says how long the full response is (undefined = not known yet).
 */
function exchange(
  port: number,
  request: Buffer,
  expectedLength: (received: Buffer) => number | undefined,
  timeoutMs = IO_TIMEOUT_MS,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: LOCALHOST, port });
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (err: Error | undefined, value?: Buffer): void => {
      if (settled) {
        return;
      }
      settled = true;
      socket.destroy();
      if (err !== undefined) {
        reject(err);
      } else {
        resolve(value ?? Buffer.alloc(0));
      }
    };
    socket.setTimeout(timeoutMs, () => finish(new Error(`no response from 127.0.0.1:${port} within ${timeoutMs} ms`)));
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const want = expectedLength(received);
      if (want !== undefined && received.length >= want) {
        finish(undefined, received.subarray(0, want));
      }
    });
    socket.once('error', (e) => finish(e));
    socket.once('close', () => finish(new Error(`connection to 127.0.0.1:${port} closed after ${received.length} bytes`)));
  });
}

function responseCode(rsp: Buffer): number {
  if (rsp.length < 10) {
    throw new Error(`short TPM response (${rsp.length} bytes)`);
  }
  return rsp.readUInt32BE(6);
}

/** Resolves true when the child has exited (or already had), false on timeout. */
function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve(true);
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Give the TPM what a manufacturer shipping a P-256 EK would: the EK from the default L-2 template
 * (not persisted — verifiers recreate it with CreatePrimary) and its certificate in NV 0x01c0000a with
 * the same attributes swtpm_setup uses for its own cert indices (0x62072801 after the write lock).
 */
async function provisionP256(tpm: SwtpmMachine, ca: LocalCa, certPath: string): Promise<void> {
  const pemPath = join(tpm.dir, 'ek-p256.pem');
  const ctxPath = join(tpm.dir, 'ek-p256.ctx');
  try {
    await tpm2(tpm, 'createek', '-G', 'ecc', '-c', ctxPath, '-u', pemPath, '-f', 'pem');
  } finally {
    // swtpm has no resource manager: the EK stays loaded as a transient object unless flushed.
    await tpm2(tpm, 'flushcontext', '-t');
    await rm(ctxPath, { force: true });
  }
  const cert = await ca.issueEkCert(createPublicKey(await readFile(pemPath)));
  await writeFile(certPath, cert);

  const index = `0x${NV_P256_EK_CERT.toString(16).padStart(8, '0')}`;
  await tpm2(tpm, 'nvdefine', index, '-C', 'p', '-s', String(cert.length),
    '-a', 'ppwrite|writedefine|ppread|ownerread|authread|no_da|platformcreate');
  await tpm2(tpm, 'nvwrite', index, '-C', 'p', '-i', certPath);
  await tpm2(tpm, 'nvwritelock', index, '-C', 'p');
}
