import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  AK_TEMPLATE_ECC,
  AK_TEMPLATE_RSA,
  activateCredential,
  createAttestationKey,
  createCertifiedDecryptKey,
  getEndorsementKey,
  getRandom,
  getTpmProperties,
  makeCredential,
  marshalCommand,
  marshalCredentialFile,
  marshalPcrSelection,
  nvReadAll,
  nvReadPublic,
  openTransport,
  parsePcrSelection,
  passwordAuth,
  pcrRead,
  quotePcrs,
  readEkCertificate,
  TPM_CC,
  TpmClient,
  type TpmTransport,
  tpm2FlushContext,
  tpm2Quote,
  tpm2ReadPublic,
  unmarshalTpm2bPublic,
  withTpmScope,
} from '@rackseal/tpm2';
import { LocalCa } from '../test/support/local-ca';
import { startSwtpm, type SwtpmMachine } from '../test/support/swtpm';
import { formatTable, measure, type Measurement, us } from './measure';

const RSA_EK = 0x81010001;
const RSA_EK_CERT = 0x01c00002;
const SELECTION = 'sha256:0,7';
const NONCE = '5eed5eed5eed5eed5eed5eed5eed5eed';

/**
 * The agent's TPM client on swtpm, measured two ways (issue 4):
 * (a) the enrollment-side TPM work (EK certificate + EK, AK create, credential activation, quote,
 *     decrypt key create + certify) done by libs/tpm2 over one connection, against a shell script
 *     of tpm2-tools doing the same on the same swtpm (target ≥ 2× faster). The server's
 *     MakeCredential runs in-process between the two halves in both, the same code;
 * (b) our overhead above swtpm's own command time: the same commands sent as prepared bytes on a
 *     raw socket (the floor: swtpm's work plus one TCP round trip) against the typed client calls
 *     that marshal, send, check and parse them (target ≤ 1.3×).
 */
export async function tpm2ClientBench(): Promise<string> {
  const ca = await LocalCa.create();
  let tpm: SwtpmMachine | undefined;
  const dir = mkdtempSync(join(tmpdir(), 'rackseal-client-bench-'));
  try {
    tpm = await startSwtpm({ ca, pcrBanks: ['sha256'] });
    const enrollment = await enrollmentBench(tpm, dir);
    const overhead = await overheadBench(tpm);
    return `${enrollment}\n\n${overhead}`;
  } finally {
    await tpm?.stop();
    await ca.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// (a) enrollment: libs/tpm2 vs tpm2-tools

const secret = Buffer.alloc(32, 0x42);

type AkType = 'rsa' | 'ecc';

/** Times every command's round trip, so a run splits into time in swtpm and time in our code. */
class TimingTransport implements TpmTransport {
  tpmMs = 0;

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
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** One enrollment by libs/tpm2; resolves the milliseconds spent waiting for swtpm. */
async function oursEnrollment(tpm: SwtpmMachine, akType: AkType): Promise<number> {
  const transport = new TimingTransport(await openTransport(tpm.device));
  const client = new TpmClient(transport);
  try {
    await withTpmScope(client, async (scope) => {
      const certificate = await readEkCertificate(client, { nvIndex: RSA_EK_CERT, keyType: 'rsa-2048' });
      const ek = await getEndorsementKey(scope, 'rsa-2048');
      const ak = await createAttestationKey(scope, ek, { template: akType === 'rsa' ? AK_TEMPLATE_RSA : AK_TEMPLATE_ECC });
      const challenge = makeCredential(ek.public, ak.name, secret);
      const recovered = await activateCredential(scope, ak, ek, challenge);
      const quote = await quotePcrs(scope, ak, parsePcrSelection(SELECTION), Buffer.from(NONCE, 'hex'));
      const key = await createCertifiedDecryptKey(scope, ak, Buffer.from(NONCE, 'hex'));
      if (certificate.der.length === 0 || !recovered.equals(secret) || quote.pcrValues.length !== 2 || key.certification.signatureBytes.length === 0) {
        throw new Error('bench enrollment produced wrong results');
      }
    });
  } finally {
    await client.close();
  }
  return transport.tpmMs;
}

/** The same steps as tpm2-tools commands (TPM2-BRIEF §8), flushing after each as swtpm needs. */
const toolsPart1 = (akType: AkType) => `set -e
tpm2_nvread ${hex(RSA_EK_CERT)} -C ${hex(RSA_EK_CERT)} -o ek.der
tpm2_readpublic -c ${hex(RSA_EK)} -o ek.pub > /dev/null
tpm2_createak -C ${hex(RSA_EK)} -c ak.ctx -G ${akType} -g sha256 -s ${akType === 'rsa' ? 'rsassa' : 'ecdsa'} -u ak.pub -n ak.name -r ak.priv > /dev/null
tpm2_flushcontext -t
`;

const TOOLS_PART_2 = `set -e
tpm2_startauthsession --policy-session -S s.ctx
tpm2_policysecret -S s.ctx -c e > /dev/null
tpm2_activatecredential -c ak.ctx -C ${hex(RSA_EK)} -i cred.out -o out.bin -P session:s.ctx > /dev/null
tpm2_flushcontext s.ctx
tpm2_quote -c ak.ctx -l ${SELECTION} -q ${NONCE} -m q.msg -s q.sig -o q.pcrs -g sha256 > /dev/null
tpm2_flushcontext -t
tpm2_createprimary -C o -g sha256 -G rsa2048:null:aes128cfb -c srk.ctx > /dev/null
tpm2_flushcontext -t
tpm2_create -C srk.ctx -G rsa2048:null:null -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|decrypt' -u key.pub -r key.priv > /dev/null
tpm2_flushcontext -t
tpm2_load -C srk.ctx -u key.pub -r key.priv -c key.ctx > /dev/null
tpm2_flushcontext -t
tpm2_certify -c key.ctx -C ak.ctx -g sha256 -o certify.out -s certify.sig > /dev/null
tpm2_flushcontext -t
`;

/** tpm2-tools processes per enrollment: the lines of both scripts but `set -e`. */
const TOOL_PROCESSES = (toolsPart1('rsa') + TOOLS_PART_2).split('\n').filter((line) => line.startsWith('tpm2_')).length;

function hex(n: number): string {
  return `0x${n.toString(16).padStart(8, '0')}`;
}

function toolsEnrollment(tpm: SwtpmMachine, dir: string, akType: AkType): void {
  const run = (script: string) => execFileSync('bash', ['-c', script], { cwd: dir, env: { ...process.env, TPM2TOOLS_TCTI: tpm.tcti }, stdio: ['ignore', 'ignore', 'pipe'] });
  run(toolsPart1(akType));
  const ekPublic = unmarshalTpm2bPublic(readFileSync(join(dir, 'ek.pub')));
  writeFileSync(join(dir, 'cred.out'), marshalCredentialFile(makeCredential(ekPublic, readFileSync(join(dir, 'ak.name')), secret)));
  run(TOOLS_PART_2);
  if (!readFileSync(join(dir, 'out.bin')).equals(secret)) {
    throw new Error('tpm2_activatecredential recovered the wrong secret');
  }
}

interface Stats {
  readonly mean: number;
  readonly p50: number;
  readonly min: number;
}

function stats(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, p50: sorted[Math.floor(sorted.length / 2)]!, min: sorted[0]! };
}

/**
 * Both sides alternate run by run, so they see the same machine and swtpm state. swtpm's RSA key
 * generation (TPM2_Create of an RSA AK and of the decrypt key: random prime search) dominates and
 * varies from run to run, which neither client can change; so the runs are also split into time
 * in swtpm (our command round trips) and time outside it (for tpm2-tools: its total minus our mean
 * time in swtpm for the same commands, an estimate).
 */
async function enrollmentBench(tpm: SwtpmMachine, dir: string): Promise<string> {
  const runs = 20;
  const ms = (v: number) => us(v * 1000);
  const rows = [[`enrollment-side TPM work (swtpm, RSA-2048 EK, ${runs} alternating runs)`, 'mean', 'p50', 'min', 'in swtpm (mean)', 'outside swtpm (mean)']];
  for (const akType of ['rsa', 'ecc'] as const) {
    await oursEnrollment(tpm, akType);
    toolsEnrollment(tpm, dir, akType);
    const ours: number[] = [];
    const inTpm: number[] = [];
    const tools: number[] = [];
    for (let i = 0; i < runs; i += 1) {
      let t0 = performance.now();
      inTpm.push(await oursEnrollment(tpm, akType));
      ours.push(performance.now() - t0);
      t0 = performance.now();
      toolsEnrollment(tpm, dir, akType);
      tools.push(performance.now() - t0);
    }
    const [o, t, tpmTime] = [stats(ours), stats(tools), stats(inTpm).mean];
    const label = akType === 'rsa' ? 'RSA-2048 AK' : 'ECC P-256 AK';
    rows.push(
      [`${label}: libs/tpm2, one connection`, ms(o.mean), ms(o.p50), ms(o.min), ms(tpmTime), ms(o.mean - tpmTime)],
      [`${label}: tpm2-tools script, ${TOOL_PROCESSES} processes`, ms(t.mean), ms(t.p50), ms(t.min), `≈ ${ms(tpmTime)}`, `≈ ${ms(t.mean - tpmTime)}`],
      [`${label}: speed-up`, `${(t.mean / o.mean).toFixed(1)}×`, `${(t.p50 / o.p50).toFixed(1)}×`, `${(t.min / o.min).toFixed(1)}×`, '', `≈ ${((t.mean - tpmTime) / (o.mean - tpmTime)).toFixed(0)}×`],
    );
  }
  return formatTable(rows);
}

// ---------------------------------------------------------------------------------------------------
// (b) overhead above swtpm: raw bytes on a socket vs the typed client

/** The minimal client: prepared command bytes on one socket, resolved when the whole response is in. */
class RawSocket {
  private pending: { resolve: (b: Buffer) => void; chunks: Buffer[]; received: number } | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      const p = this.pending!;
      p.chunks.push(chunk);
      p.received += chunk.length;
      const all = p.chunks.length === 1 ? p.chunks[0]! : Buffer.concat(p.chunks);
      if (p.received >= 10 && p.received === all.readUInt32BE(2)) {
        this.pending = undefined;
        p.resolve(all);
      }
    });
  }

  static open(port: number): Promise<RawSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.setNoDelay(true);
        resolve(new RawSocket(socket));
      });
      socket.once('error', reject);
    });
  }

  send(command: Buffer): Promise<Buffer> {
    return new Promise((resolve) => {
      this.pending = { resolve, chunks: [], received: 0 };
      this.socket.write(command);
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

/** swtpm serves one connection at a time: the raw socket and the client take turns, each on its own. */
async function rawBlock(tpm: SwtpmMachine, testCase: OverheadCase, iterations: number): Promise<Measurement> {
  const raw = await RawSocket.open(tpm.port);
  try {
    for (const command of testCase.raw) {
      const code = (await raw.send(command)).readUInt32BE(6);
      if (code !== 0) {
        throw new Error(`${testCase.name}: the raw command was answered 0x${code.toString(16)}`);
      }
    }
    return await measure(`${testCase.name} raw`, async () => {
      for (const command of testCase.raw) {
        await raw.send(command);
      }
    }, { iterations, warmup: 50 });
  } finally {
    raw.close();
  }
}

function clientBlock(tpm: SwtpmMachine, testCase: OverheadCase, iterations: number): Promise<Measurement> {
  return withClient(tpm, (client) => measure(`${testCase.name} client`, () => testCase.client(client), { iterations, warmup: 50 }));
}

interface OverheadCase {
  readonly name: string;
  /** The command bytes the client sends, captured once from the client itself. */
  readonly raw: readonly Buffer[];
  readonly client: (client: TpmClient) => Promise<unknown>;
}

async function overheadBench(tpm: SwtpmMachine): Promise<string> {
  const pcrs = parsePcrSelection('sha256:0,1,2,3,4,5,6,7');
  const certSize = await withClient(tpm, async (client) => (await nvReadPublic(client, RSA_EK_CERT)).nvPublic.dataSize);
  // Quotes are the agent's heaviest recurring command: RSA and ECC AKs stay loaded for the whole
  // measurement (swtpm keeps transient objects across connections) and are flushed at the end.
  const aks = await withClient(tpm, (client) =>
    withTpmScope(client, async (scope) => {
      const ek = await getEndorsementKey(scope, 'rsa-2048');
      const rsa = await createAttestationKey(scope, ek);
      const ecc = await createAttestationKey(scope, ek, { template: AK_TEMPLATE_ECC });
      scope.forget(rsa.handle);
      scope.forget(ecc.handle);
      return { rsa: rsa.handle, ecc: ecc.handle };
    }),
  );
  const nonce = Buffer.from(NONCE, 'hex');
  const quoteSelection = parsePcrSelection(SELECTION);
  const quoteCommand = (handle: number) =>
    marshalCommand({
      code: TPM_CC.TPM_CC_Quote,
      handles: [handle],
      sessions: [passwordAuth()],
      parameters: Buffer.concat([Buffer.from([0, nonce.length]), nonce, Buffer.from([0x00, 0x10]), marshalPcrSelection(quoteSelection)]),
    });
  const cases: OverheadCase[] = [
    { name: 'GetRandom(32)', raw: [marshalCommand({ code: TPM_CC.TPM_CC_GetRandom, parameters: Buffer.from([0, 32]) })], client: (c) => getRandom(c, 32) },
    { name: 'PCR_Read sha256:0-7', raw: [marshalCommand({ code: TPM_CC.TPM_CC_PCR_Read, parameters: marshalPcrSelection(pcrs) })], client: (c) => pcrRead(c, pcrs) },
    { name: 'ReadPublic RSA EK (+ Name check)', raw: [marshalCommand({ code: TPM_CC.TPM_CC_ReadPublic, handles: [RSA_EK] })], client: (c) => tpm2ReadPublic(c, RSA_EK) },
    {
      name: 'GetCapability PT_FIXED',
      raw: [marshalCommand({ code: TPM_CC.TPM_CC_GetCapability, parameters: Buffer.from('00000006' + '00000100' + '00000100', 'hex') })],
      client: (c) => getTpmProperties(c, 0x100, 256),
    },
    {
      name: 'EK certificate: NV_ReadPublic + NV_Read',
      raw: [
        marshalCommand({ code: TPM_CC.TPM_CC_NV_ReadPublic, handles: [RSA_EK_CERT] }),
        marshalCommand({ code: TPM_CC.TPM_CC_NV_Read, handles: [RSA_EK_CERT, RSA_EK_CERT], sessions: [{ sessionHandle: 0x40000009, nonce: Buffer.alloc(0), sessionAttributes: 0, hmac: Buffer.alloc(0) }], parameters: Buffer.from([certSize >> 8, certSize & 0xff, 0, 0]) }),
      ],
      client: (c) => nvReadAll(c, RSA_EK_CERT),
    },
    { name: `Quote ${SELECTION}, RSA-2048 AK`, raw: [quoteCommand(aks.rsa)], client: (c) => tpm2Quote(c, aks.rsa, passwordAuth(), nonce, quoteSelection) },
    { name: `Quote ${SELECTION}, ECC P-256 AK`, raw: [quoteCommand(aks.ecc)], client: (c) => tpm2Quote(c, aks.ecc, passwordAuth(), nonce, quoteSelection) },
  ];

  // On a small (virtual) machine swtpm competes with node for two cores and whole blocks of
  // iterations run slow when another process runs: each case runs in alternating blocks (raw
  // first, then the client first) and the best block's median of each side is compared; the
  // medians of the blocks' means show how far the noise goes.
  const rows = [['command (swtpm, one TCP connection)', 'raw socket (floor), p50', 'TpmClient, p50', 'ratio', 'added per call', 'means (raw / client)']];
  const rounds = 8;
  const iterations = 500;
  const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const best = (values: number[]) => Math.min(...values);
  for (const testCase of cases) {
    const floors: Measurement[] = [];
    const ours: Measurement[] = [];
    for (let round = 0; round < rounds; round += 1) {
      const blocks = [() => rawBlock(tpm, testCase, iterations).then((m) => floors.push(m)), () => clientBlock(tpm, testCase, iterations).then((m) => ours.push(m))];
      for (const block of round % 2 === 0 ? blocks : blocks.reverse()) {
        await block();
      }
    }
    const floorP50 = best(floors.map((m) => m.p50Us));
    const oursP50 = best(ours.map((m) => m.p50Us));
    rows.push([
      testCase.name,
      us(floorP50),
      us(oursP50),
      `${(oursP50 / floorP50).toFixed(2)}×`,
      us(oursP50 - floorP50),
      `${us(median(floors.map((m) => m.meanUs)))} / ${us(median(ours.map((m) => m.meanUs)))}`,
    ]);
  }
  await withClient(tpm, async (client) => {
    await tpm2FlushContext(client, aks.rsa);
    await tpm2FlushContext(client, aks.ecc);
  });
  return formatTable(rows);
}

async function withClient<T>(tpm: SwtpmMachine, work: (client: TpmClient) => Promise<T>): Promise<T> {
  const client = new TpmClient(await openTransport(tpm.device));
  try {
    return await work(client);
  } finally {
    await client.close();
  }
}
