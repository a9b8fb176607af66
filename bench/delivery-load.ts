import { constants, createHmac, privateDecrypt, randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { DELIVERIES_ROUTE, deliveryAckRoute, type MailboxResponse, MAILBOX_MAX_WAIT_SECONDS, nodeApiPath } from '@rackseal/node-api-contracts';
import { signNodeRequest } from '@rackseal/node-identity';
import { CONTENT_KEY_BYTES, CONTENT_KEY_OAEP_LABEL, openPayload, parseEnvelope } from '@rackseal/wrapping';
import type { SimulatedMachine } from './delivery-fleet';
import { type HttpAnswer, jsonBody, RequestFailedError, sendJson, sleep } from './http-json';

/**
 * The delivery benchmark's fleet: one agent loop per simulated machine, all at once, as
 * `rackseal-agent run` does between attestations — a signed long poll of its mailbox
 * (GET /node/v1/deliveries?wait=30, held open by the control plane until a delivery is ready or the
 * wait ends), then for each delivery the unwrap in software (what the TPM does: RSA-OAEP decrypt of
 * the content key with the certified key's private half, label "rackseal-content-key-v1\0"; then
 * AES-256-GCM of the payload under the envelope's header) and the signed ack with the proof
 * HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id); then it polls again. A poll that
 * ends empty is sent again at once. Requests go round-robin over the control planes' base URLs.
 */
export interface FleetStats {
  /** Long polls sent (each one a signed request the control plane authenticates). */
  polls: number;
  /** Polls that ended with no delivery (the 30 s wait ran out, or an answer for nothing). */
  emptyPolls: number;
  /** Acks answered 200 with alreadyAcked false, by delivery id: each must appear once. */
  readonly acked: Map<string, string>;
  /** Acks answered alreadyAcked true (must stay 0: every agent acks each delivery once). */
  alreadyAcked: number;
  /**
   * Requests sent again after a connection failure before any answer (RETRIED_NETWORK_ERRORS: a
   * keep-alive socket the server closed as idle while the request went out, a connection the full
   * listen backlog dropped), as an agent retries.
   */
  resent: number;
  /** 503 answers (database.unavailable: no pool connection within its timeout) sent again after their Retry-After, as the agent does. */
  unavailable: number;
  /** performance.now() of the last ack of the version awaited. */
  lastAckAt: number;
  /** Machines that acked a delivery of the version awaited. */
  done: number;
}

/** Connection failures an agent retries: a reset keep-alive socket, a connection the full listen backlog dropped or refused. */
const RETRIED_NETWORK_ERRORS = new Set(['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EPIPE']);

export class SimulatedFleet {
  readonly stats: FleetStats = { polls: 0, emptyPolls: 0, acked: new Map(), alreadyAcked: 0, resent: 0, unavailable: 0, lastAckAt: 0, done: 0 };
  private readonly agents: Agent[];
  private readonly bases: URL[];
  private turn = 0;
  private stopping = false;
  private failure: Error | undefined;
  private rejectFailed: (error: Error) => void = () => undefined;
  private readonly failedOnce = new Promise<never>((_, reject) => (this.rejectFailed = reject));
  private running: Promise<void>[] = [];
  private awaited: { secret: string; version: number } | undefined;
  private readonly doneMachines = new Set<string>();
  private allDone: (() => void) | undefined;

  constructor(
    private readonly machines: readonly SimulatedMachine[],
    baseUrls: readonly string[],
  ) {
    this.bases = baseUrls.map((u) => new URL(u));
    // Awaited through failed() or throwIfFailed(); never an unhandled rejection on its own.
    this.failedOnce.catch(() => undefined);
    this.agents = this.bases.map(() => new Agent({ keepAlive: true, maxSockets: Infinity }));
  }

  /** Starts every machine's loop, `perSecond` new machines a second (a fleet's polls do not all arrive in one instant). */
  async start(perSecond: number): Promise<void> {
    const step = Math.max(1, Math.round(perSecond / 20));
    for (let i = 0; i < this.machines.length; i += step) {
      for (const machine of this.machines.slice(i, i + step)) {
        this.running.push(this.loop(machine).catch((error: unknown) => this.fail(error as Error)));
      }
      await sleep(50);
      this.throwIfFailed();
    }
  }

  /** Resolves when every machine has acked a delivery of `secret`@`version`. */
  awaitVersion(secret: string, version: number): Promise<void> {
    this.awaited = { secret, version };
    this.doneMachines.clear();
    this.stats.done = 0;
    return new Promise((resolve) => {
      this.allDone = resolve;
    });
  }

  /**
   * Rejects with the first failure of any machine's loop, as it happens (not by polling with an
   * unref'd timer: once every loop has failed nothing else may keep the process alive, and it would
   * end with exit code 0 and no report).
   */
  failed(): Promise<never> {
    return this.failedOnce;
  }

  private fail(error: Error): void {
    if (this.failure === undefined) {
      this.failure = error;
      this.rejectFailed(error);
    }
  }

  throwIfFailed(): void {
    if (this.failure !== undefined) {
      throw this.failure;
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.agents.forEach((a) => a.destroy());
    await Promise.all(this.running);
  }

  private async loop(machine: SimulatedMachine): Promise<void> {
    const pollPath = `${nodeApiPath(DELIVERIES_ROUTE)}?wait=${MAILBOX_MAX_WAIT_SECONDS}`;
    while (!this.stopping) {
      let answer: HttpAnswer;
      try {
        answer = await this.call(machine, 'GET', pollPath, undefined);
      } catch (error) {
        if (this.stopping) {
          return;
        }
        throw error;
      }
      this.stats.polls += 1;
      if (answer.status !== 200) {
        throw new Error(`poll of ${machine.serial} answered ${answer.status}: ${JSON.stringify(answer.body)}`);
      }
      const deliveries = (answer.body as MailboxResponse).deliveries;
      if (deliveries.length === 0) {
        this.stats.emptyPolls += 1;
        continue;
      }
      for (const delivery of deliveries) {
        const proof = unwrap(machine, delivery.id, Buffer.from(delivery.envelope, 'base64'));
        const acked = await this.call(machine, 'POST', nodeApiPath(deliveryAckRoute(delivery.id)), { proof: proof.toString('base64') });
        const body = acked.body as { alreadyAcked?: boolean };
        if (acked.status !== 200) {
          throw new Error(`ack of ${delivery.id} by ${machine.serial} answered ${acked.status}: ${JSON.stringify(acked.body)}`);
        }
        if (body.alreadyAcked === true) {
          this.stats.alreadyAcked += 1;
          continue;
        }
        if (this.stats.acked.has(delivery.id)) {
          throw new Error(`delivery ${delivery.id} acked twice as new`);
        }
        this.stats.acked.set(delivery.id, machine.id);
        const awaited = this.awaited;
        if (awaited !== undefined && delivery.secret === awaited.secret && delivery.version === awaited.version && !this.doneMachines.has(machine.id)) {
          this.doneMachines.add(machine.id);
          this.stats.lastAckAt = performance.now();
          this.stats.done += 1;
          if (this.stats.done === this.machines.length) {
            this.allDone?.();
          }
        }
      }
    }
  }

  private async call(machine: SimulatedMachine, method: 'GET' | 'POST', path: string, body: unknown): Promise<HttpAnswer> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        const answer = await this.callOnce(machine, method, path, body);
        if (answer.status === 503 && !this.stopping) {
          this.stats.unavailable += 1;
          await sleep(answer.retryAfter * 1000);
          attempt = -1;
          continue;
        }
        return answer;
      } catch (error) {
        if (!(error instanceof RequestFailedError && RETRIED_NETWORK_ERRORS.has(error.code ?? '')) || attempt >= 5 || this.stopping) {
          throw error;
        }
        this.stats.resent += 1;
        await sleep(100 * (attempt + 1));
      }
    }
  }

  private callOnce(machine: SimulatedMachine, method: 'GET' | 'POST', path: string, body: unknown): Promise<HttpAnswer> {
    const { bytes, headers } = jsonBody(body);
    const signed = signNodeRequest({ credential: machine.credential, method, path, body: bytes, now: new Date(), nonce: randomBytes(16) });
    const replica = (this.turn = (this.turn + 1) % this.bases.length);
    return sendJson(this.agents[replica]!, this.bases[replica]!, method, path, { ...signed, ...headers }, bytes);
  }
}

/** The agent's unwrap, in software: the content key by RSA-OAEP (the TPM's RSA_Decrypt), the payload by AES-256-GCM, the ack proof. */
function unwrap(machine: SimulatedMachine, deliveryId: string, bytes: Buffer): Buffer {
  const envelope = parseEnvelope(bytes);
  if (envelope.deliveryId !== deliveryId || envelope.transport.binding !== 'certified-key' || !('encryptedKey' in envelope.transport)) {
    throw new Error(`envelope of ${deliveryId} is not a certified-key envelope addressed to it`);
  }
  const seed = privateDecrypt({ key: machine.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256', oaepLabel: CONTENT_KEY_OAEP_LABEL }, envelope.transport.encryptedKey);
  const contentKey = seed.subarray(0, CONTENT_KEY_BYTES);
  try {
    const payload = openPayload(envelope, contentKey);
    payload.fill(0);
    return createHmac('sha256', contentKey).update('rackseal ack v1', 'latin1').update(deliveryId, 'latin1').digest();
  } finally {
    seed.fill(0);
  }
}
