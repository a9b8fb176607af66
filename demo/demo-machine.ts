/**
 * One machine of the demo: a swtpm TPM with its EK certificate, a LUKS2 image file as its data disk,
 * and the built `rackseal-agent` run against it exactly as on a node — `enroll`, then the `run`
 * daemon with a config file saying where each secret goes, and `unlock` at "boot", offline, from
 * the image's token alone, feeding `cryptsetup open --test-passphrase --key-file=-`.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { readRacksealToken } from '../apps/agent/src/install/luks-token';
import type { RacksealToken } from '../apps/agent/src/install/luks-token-format';
import { AGENT_ENTRY, type CliRun, runAgentCliAsync, spawnCli } from './support/cli-runner';
import { luksImage } from './support/luks-image';
import type { SwtpmMachine } from './support/swtpm';
import type { Stoppable } from './stack';
import { check } from './steps';

/** One JSON line of `rackseal-agent run` (README, the agent's table): the fields the demo reads. */
export interface AgentLine {
  readonly outcome: string;
  readonly state?: string;
  readonly code?: string;
  readonly secret?: string;
  readonly version?: number;
  readonly key?: { readonly outcome: string };
  readonly disk?: { readonly generation: number; readonly keyslot: number };
}

export const TLS_SECRET = 'web-tls';
export const KUBELET_SECRET = 'kubelet';
export const DISK_SECRET = 'root-disk';

/** RFC 7468's end line of a certificate: the kubelet PEM file holds the key after it. */
const END_CERTIFICATE = '-----END CERTIFICATE-----';

export class DemoMachine {
  readonly stateDir: string;
  readonly files: string;
  readonly image: string;
  private readonly enrollKeyFile: string;
  private agent: AgentDaemon | undefined;

  private constructor(
    readonly serial: string,
    readonly hostname: string,
    readonly tpm: SwtpmMachine,
    /** The control-plane replica this machine's agent talks to. */
    readonly server: string,
    private readonly dir: string,
    disk: { image: string; enrollKeyFile: string },
  ) {
    this.stateDir = join(dir, 'agent-state');
    this.files = join(dir, 'files');
    this.image = disk.image;
    this.enrollKeyFile = disk.enrollKeyFile;
  }

  /** The machine's directory under `parent`, with a freshly formatted LUKS2 image (slot 0: the installer's enrollment key). */
  static async create(parent: string, serial: string, hostname: string, tpm: SwtpmMachine, server: string): Promise<DemoMachine> {
    const dir = join(parent, serial);
    await mkdir(dir);
    return new DemoMachine(serial, hostname, tpm, server, dir, luksImage(dir));
  }

  get tlsKey(): string {
    return join(this.files, 'tls/node.key');
  }

  get tlsCert(): string {
    return join(this.files, 'tls/node.crt');
  }

  get tlsChain(): string {
    return join(this.files, 'tls/ca.crt');
  }

  get kubeletPem(): string {
    return join(this.files, 'kubelet/kubelet-client-current.pem');
  }

  get kubeconfig(): string {
    return join(this.files, 'kubelet/kubelet.conf');
  }

  /** `rackseal-agent enroll` (RSA EK, no event log: swtpm has no firmware to measure). */
  enroll(): Promise<CliRun> {
    return runAgentCliAsync(['enroll', '--server', this.server, '--tpm', this.tpm.device, '--state-dir', this.stateDir, '--ek', 'rsa-2048', '--event-log', 'none']);
  }

  /** Starts `rackseal-agent run` with its config file. */
  async startAgent(): Promise<AgentDaemon> {
    const config = join(this.dir, 'agent.yaml');
    await writeFile(
      config,
      [
        `server: ${this.server}`,
        `tpm: ${this.tpm.device}`,
        `stateDir: ${this.stateDir}`,
        'installs:',
        `  ${TLS_SECRET}: {kind: tls, keyPath: ${this.tlsKey}, certPath: ${this.tlsCert}, chainPath: ${this.tlsChain}}`,
        `  ${KUBELET_SECRET}: {kind: kubelet-client, pemPath: ${this.kubeletPem}, kubeconfigPath: ${this.kubeconfig}}`,
        `  ${DISK_SECRET}: {kind: disk, device: ${this.image}, enrollKeyFile: ${this.enrollKeyFile}}`,
        '',
      ].join('\n'),
    );
    // An hour between attestations: what brings one sooner is the control plane's `reattest` (asked every 2 s).
    this.agent = new AgentDaemon(`rackseal-agent run (${this.serial})`, spawnCli('rackseal-agent', ['run', '--config', config, '--event-log', 'none', '--interval', '1h', '--ask-every', '2s']));
    return this.agent;
  }

  get daemon(): AgentDaemon {
    check(this.agent !== undefined, `${this.serial}: no agent running`);
    return this.agent;
  }

  /** The agent daemon once started (running or not), else undefined. */
  get startedAgent(): AgentDaemon | undefined {
    return this.agent;
  }

  /** The agent's last lines and stderr, for a failed check's message. */
  daemonTail(): string {
    if (this.agent === undefined) {
      return 'not started';
    }
    const lines = this.agent.lines.slice(-3).map((l) => [l.outcome, l.secret, l.version, l.code].filter((x) => x !== undefined).join(' '));
    return [...lines, this.agent.stderr.trim().split('\n').slice(-2).join(' | ')].filter((l) => l !== '').join(' / ');
  }

  /**
   * `rackseal-agent unlock` alone, as boot runs it: offline (the state dir is not given and the server
   * named is one where nothing listens), the key from the image's token. Only the exit status, the
   * key's length and stderr come back: the key itself never leaves this function.
   */
  async unlock(): Promise<{ status: number | null; keyBytes: number; stderr: string }> {
    const run = await pipeline(process.execPath, this.unlockArgs(), { stdoutIsSecret: true });
    return { status: run.status, keyBytes: run.stdoutBytes, stderr: run.stderr };
  }

  /** `rackseal-agent unlock … | cryptsetup open --test-passphrase --key-file=- IMAGE`: cryptsetup's exit status (0: the image opens). */
  async opensAtBoot(): Promise<number | null> {
    const line = `${[process.execPath, ...this.unlockArgs()].map(quote).join(' ')} 2>/dev/null | cryptsetup open --test-passphrase --key-file=- ${quote(this.image)}`;
    return (await pipeline('sh', ['-c', line])).status;
  }

  /** The image's `rackseal` LUKS2 token (generation, keyslot, approvals), read with cryptsetup as the agent reads it. */
  async token(): Promise<RacksealToken | undefined> {
    return readRacksealToken(this.image);
  }

  /** The LUKS2 keyslots in use. */
  async keyslots(): Promise<number[]> {
    const run = await pipeline('cryptsetup', ['luksDump', '--dump-json-metadata', this.image]);
    check(run.status === 0, `cryptsetup luksDump ${this.image} exited ${String(run.status)}`);
    return Object.keys((JSON.parse(run.stdout) as { keyslots: Record<string, unknown> }).keyslots)
      .map(Number)
      .sort((a, b) => a - b);
  }

  /**
   * The installed TLS pair, checked: the certificate is for this machine's hostname, signed by the
   * cluster TLS CA (the installed chain, which must be the CA the control plane serves) and matches
   * the installed key. Answers the certificate's serial number.
   */
  async checkTls(clusterCaPem: string): Promise<string> {
    const [cert, chain, key] = await Promise.all([readFile(this.tlsCert), readFile(this.tlsChain, 'utf8'), readFile(this.tlsKey)]);
    const certificate = new X509Certificate(cert);
    const ca = new X509Certificate(chain);
    check(ca.fingerprint256 === new X509Certificate(clusterCaPem).fingerprint256, `${this.serial}: ${this.tlsChain} is not the cluster TLS CA`);
    check(certificate.verify(ca.publicKey), `${this.serial}: ${this.tlsCert} is not signed by the cluster TLS CA`);
    check(certificate.checkPrivateKey(createPrivateKey(key)), `${this.serial}: ${this.tlsKey} does not match ${this.tlsCert}`);
    check((certificate.subjectAltName ?? '').includes(`DNS:${this.hostname}.`), `${this.serial}: the certificate names ${String(certificate.subjectAltName)}, not ${this.hostname}`);
    return certificate.serialNumber;
  }

  /**
   * The installed kubelet client credential, checked: certificate then key in one PEM file, the
   * certificate `system:node:<hostname>` in `system:nodes` signed by the cluster's Kubernetes CA,
   * the key its own, and a kubelet.conf naming the API server. Answers the certificate's serial.
   */
  async checkKubelet(kubernetesCaPem: string, apiServer: string): Promise<string> {
    const pem = await readFile(this.kubeletPem, 'utf8');
    const certificate = new X509Certificate(pem);
    check(certificate.subject.includes(`CN=system:node:${this.hostname}`) && certificate.subject.includes('O=system:nodes'), `${this.serial}: the kubelet certificate's subject is ${certificate.subject}`);
    check(certificate.verify(new X509Certificate(kubernetesCaPem).publicKey), `${this.serial}: the kubelet certificate is not signed by the Kubernetes CA`);
    check(certificate.checkPrivateKey(createPrivateKey(pem.slice(pem.indexOf(END_CERTIFICATE) + END_CERTIFICATE.length))), `${this.serial}: the kubelet key does not match its certificate`);
    check((await readFile(this.kubeconfig, 'utf8')).includes(apiServer), `${this.serial}: ${this.kubeconfig} does not name ${apiServer}`);
    return certificate.serialNumber;
  }

  private unlockArgs(): string[] {
    return [AGENT_ENTRY, 'unlock', '--device', this.image, '--tpm', this.tpm.device, '--state-dir', join(this.dir, 'no-state-dir'), '--server', 'http://127.0.0.1:9', '--timeout', '2s'];
  }
}

/** A running `rackseal-agent run`: its JSON lines as they come, its exit. */
export class AgentDaemon implements Stoppable {
  readonly lines: AgentLine[] = [];
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(
    readonly label: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const text of parts.filter((l) => l.trim() !== '')) {
        this.lines.push(parseLine(text));
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-8192);
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** SIGTERM (the agent ends cleanly), SIGKILL after 10 s. */
  async stop(): Promise<unknown> {
    if (this.running) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
      await this.exited;
      clearTimeout(timer);
    }
    return this.exited;
  }
}

function parseLine(text: string): AgentLine {
  try {
    return JSON.parse(text) as AgentLine;
  } catch {
    return { outcome: 'unparsed', code: text.slice(0, 200) };
  }
}

function quote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * A child run to its end: exit status, stdout as text, its length, stderr. With `stdoutIsSecret` (a
 * disk key) stdout is only counted, its bytes overwritten, never kept.
 */
function pipeline(command: string, args: readonly string[], options: { stdoutIsSecret?: boolean } = {}): Promise<{ status: number | null; stdout: string; stdoutBytes: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.once('error', reject);
    child.once('close', (status) => {
      const bytes = Buffer.concat(out);
      const result = { status, stdout: options.stdoutIsSecret === true ? '' : bytes.toString('utf8'), stdoutBytes: bytes.length, stderr };
      bytes.fill(0);
      out.forEach((b) => b.fill(0));
      resolve(result);
    });
  });
}
