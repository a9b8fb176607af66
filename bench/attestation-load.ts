import { createHash } from 'node:crypto';
import { Agent } from 'node:http';
import { buildImaEntry, entryExtend, marshalBinaryEntry } from '@rackseal/ima';
import { nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { activationProof } from '@rackseal/node-identity';
import { parsePcrSelection } from '@rackseal/tpm2';
import type { SoftwareTpm } from '../test/support/software-tpm';
import { type HttpAnswer, jsonBody, RequestFailedError, sendJson, sleep } from './http-json';

/**
 * The attestation benchmark's load generator: `clients` concurrent agents, each enrolling its own
 * machines one after the other with the real protocol over HTTP (POST /node/v1/attestations, the
 * TPM's answers from a software TPM, POST …/finish), requests spread round-robin over the control
 * planes (as a load balancer would: the two calls of one attestation usually reach different
 * replicas). Every finish must answer 200 `attested`; anything else stops the run with the answer.
 */
export interface BenchMachine {
  readonly serial: string;
  readonly tpm: SoftwareTpm;
  /** base64 DER of its EK certificate, as the agent sends it. */
  readonly ekCertificate: string;
}

/** With a runtime policy (ATTEST_BENCH_IMA): the files a bench machine's IMA measures, cycling over this many paths. */
export const IMA_BENCH_PATHS = 10_000;
/** Entries a bench machine's first round sends: what its kernel measured at boot. */
export const IMA_BENCH_BOOT_ENTRIES = 1_000;
export const imaBenchPath = (i: number): string => `/usr/lib/bench/file-${i % IMA_BENCH_PATHS}.so`;
export const imaBenchDigest = (path: string): Buffer => createHash('sha256').update(path).digest();

/** A bench machine's IMA list: its binary entries, measured into its software TPM's PCR 10 as they are added. */
class ImaList {
  readonly raw: Buffer[] = [];
  measure(tpm: SoftwareTpm, count: number): void {
    for (let k = 0; k < count; k += 1) {
      const path = imaBenchPath(this.raw.length);
      const entry = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: imaBenchDigest(path), name: path }, this.raw.length);
      tpm.extend(10, entryExtend(entry, { bank: 'sha256' }).extend);
      this.raw.push(marshalBinaryEntry(entry));
    }
  }
}

export interface LoadResult {
  readonly attestations: number;
  readonly seconds: number;
  /** Latencies (ms) of attestations that ended inside the measured window. */
  readonly start: Float64Array;
  readonly finish: Float64Array;
  readonly whole: Float64Array;
  /** CPU of this process (the load generator) during the measured window, ms. */
  readonly generatorCpuMs: number;
  /** 503 answers (database.unavailable: no pool connection within its timeout) retried during the window. */
  readonly unavailable: number;
}

const START_PATH = nodeApiPath('attestations');
const finishPath = (id: string): string => nodeApiPath(`attestations/${id}/finish`);

class Samples {
  private values = new Float64Array(1 << 16);
  length = 0;
  push(value: number): void {
    if (this.length === this.values.length) {
      const grown = new Float64Array(this.values.length * 2);
      grown.set(this.values);
      this.values = grown;
    }
    this.values[this.length++] = value;
  }
  sorted(): Float64Array {
    return this.values.slice(0, this.length).sort();
  }
}

/**
 * One POST. A stale keep-alive socket (RequestFailedError.staleSocket: the server never read the
 * request) is sent again on a fresh socket; any other failure ends the run.
 */
async function post(agent: Agent, base: URL, path: string, body: unknown): Promise<HttpAnswer> {
  const { bytes, headers } = jsonBody(body);
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await sendJson(agent, base, 'POST', path, headers, bytes);
    } catch (error) {
      if (!(error instanceof RequestFailedError && error.staleSocket) || attempt >= 3) {
        throw error;
      }
    }
  }
}

/**
 * Runs `clients` agents against `baseUrls` for warm-up + measured seconds. An attestation counts
 * when its finish answered inside the measured window.
 */
export async function runLoad(options: {
  readonly baseUrls: readonly string[];
  readonly machines: readonly BenchMachine[];
  readonly clients: number;
  readonly warmupSeconds: number;
  readonly seconds: number;
  /** Called when the measured window opens and when it closes (CPU samples of the servers). */
  readonly onWindow?: (edge: 'open' | 'close') => void | Promise<void>;
  /** New IMA entries each machine measures per round when the server asks for its list (the first round: IMA_BENCH_BOOT_ENTRIES). */
  readonly imaPerRound?: number;
}): Promise<LoadResult> {
  const { baseUrls, machines, clients } = options;
  const bases = baseUrls.map((u) => new URL(u));
  const agents = bases.map(() => new Agent({ keepAlive: true, maxSockets: clients }));
  let turn = 0;
  const next = (): number => (turn = (turn + 1) % bases.length);
  const start = new Samples();
  const finish = new Samples();
  const whole = new Samples();
  let counted = 0;
  let unavailable = 0;
  const imaLists = new Map<string, ImaList>();
  /** POST to the next replica; a 503 is retried after its Retry-After, as the agent does (issue 12 item 6). */
  const call = async (path: string, body: unknown): Promise<{ status: number; body: unknown }> => {
    for (;;) {
      const replica = next();
      const answer = await post(agents[replica]!, bases[replica]!, path, body);
      if (answer.status !== 503 || stopping) {
        return answer;
      }
      if (windowOpen) {
        unavailable += 1;
      }
      await sleep(answer.retryAfter * 1000);
    }
  };
  let windowOpen = false;
  let stopping = false;
  let failure: Error | undefined;

  const client = async (index: number): Promise<void> => {
    const own = machines.filter((_, i) => i % clients === index);
    for (let k = 0; !stopping && failure === undefined; k += 1) {
      const machine = own[k % own.length]!;
      const t0 = performance.now();
      const started = await call(START_PATH, { ekCertificate: machine.ekCertificate, akPublic: machine.tpm.akPublicBytes.toString('base64') });
      const t1 = performance.now();
      if (stopping && started.status === 503) {
        break;
      }
      if (started.status !== 201) {
        throw new Error(`start for ${machine.serial} answered ${started.status}: ${JSON.stringify(started.body)}`);
      }
      const challenge = started.body as StartAttestationResponse;
      const secret = machine.tpm.activateCredential(Buffer.from(challenge.credentialBlob, 'base64'), Buffer.from(challenge.encryptedSecret, 'base64'));
      const nonce = Buffer.from(challenge.nonce, 'base64');
      let list: ImaList | undefined;
      if (challenge.ima !== undefined) {
        list = imaLists.get(machine.serial) ?? new ImaList();
        imaLists.set(machine.serial, list);
        list.measure(machine.tpm, list.raw.length === 0 ? IMA_BENCH_BOOT_ENTRIES : (options.imaPerRound ?? 0));
      }
      const quote = machine.tpm.quote(parsePcrSelection(`${challenge.pcrSelection.bank}:${challenge.pcrSelection.pcrs.join(',')}`), nonce);
      const body = {
        activationProof: activationProof(secret, challenge.registrationId, nonce).toString('base64'),
        quote: { attest: quote.attest.toString('base64'), signature: quote.signature.toString('base64') },
        pcrValues: quote.pcrValues.toString('base64'),
        ...(list === undefined ? {} : { ima: { firstEntry: challenge.ima!.fromEntry, entries: Buffer.concat(list.raw.slice(challenge.ima!.fromEntry)).toString('base64') } }),
      };
      const t2 = performance.now();
      const finished = await call(finishPath(challenge.registrationId), body);
      const t3 = performance.now();
      if (stopping && finished.status === 503) {
        break;
      }
      if (finished.status !== 200 || (finished.body as { state?: string }).state !== 'attested' || (finished.body as { ima?: { decision: string } }).ima?.decision === 'fail') {
        throw new Error(`finish for ${machine.serial} answered ${finished.status}: ${JSON.stringify(finished.body)}`);
      }
      if (windowOpen && !stopping) {
        counted += 1;
        start.push(t1 - t0);
        finish.push(t3 - t2);
        whole.push(t3 - t0);
      }
    }
  };

  const running = Array.from({ length: clients }, (_, i) =>
    client(i).catch((error: unknown) => {
      failure ??= error as Error;
    }),
  );
  await sleep(options.warmupSeconds * 1000);
  await options.onWindow?.('open');
  const cpu0 = process.cpuUsage();
  const opened = performance.now();
  windowOpen = true;
  await sleep(options.seconds * 1000);
  stopping = true;
  const seconds = (performance.now() - opened) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await options.onWindow?.('close');
  await Promise.all(running);
  agents.forEach((a) => a.destroy());
  if (failure !== undefined) {
    throw failure;
  }
  return { attestations: counted, seconds, start: start.sorted(), finish: finish.sorted(), whole: whole.sorted(), generatorCpuMs: (cpu.user + cpu.system) / 1000, unavailable };
}

/** The `q` quantile of sorted samples. */
export function quantile(sorted: Float64Array, q: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]!;
}
