import { constants, createHmac, privateDecrypt, randomBytes } from 'node:crypto';
import { Agent } from 'node:http';
import { type CarriedAck, DELIVERIES_POLL_ROUTE, DELIVERIES_ROUTE, deliveryAckRoute, type MailboxDelivery, type MailboxPollResponse, type MailboxResponse, MAILBOX_MAX_WAIT_SECONDS, nodeApiPath } from '@rackseal/node-api-contracts';
import { signNodeRequest } from '@rackseal/node-identity';
import { CONTENT_KEY_BYTES, CONTENT_KEY_OAEP_LABEL, openPayload, parseEnvelope } from '@rackseal/wrapping';
import type { SimulatedMachine } from './delivery-fleet';
import { type HttpAnswer, jsonBody, RequestFailedError, sendJson, sleep } from './http-json';

/**
 * The delivery benchmark's fleet: one agent loop per simulated machine, all at once, as
 * `rackseal-agent run` does between attestations — a signed long poll of its mailbox, held open by
 * the control plane until a delivery is ready or the wait (30 s) ends; for each delivery the unwrap
 * in software (what the TPM does: RSA-OAEP decrypt of the content key with the certified key's
 * private half, label "rackseal-content-key-v1\0"; then AES-256-GCM of the payload under the
 * envelope's header) and the proof HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id).
 * Two protocols (DELIVERY_BENCH_PROTOCOL): `carried` (the agent's: POST /node/v1/deliveries/poll
 * carrying the acks of what the previous answer brought — one request per delivery) and `separate`
 * (the agent before it, and control planes without the POST poll: GET …/deliveries?wait=30, then one
 * signed POST …/:id/ack per delivery, then the next GET). A poll that ends empty is sent again at
 * once. Requests go round-robin over the control planes' base URLs.
 */
export type FleetProtocol = 'carried' | 'separate';

export interface FleetStats {
  /** Long polls sent (each one a signed request the control plane authenticates). */
  polls: number;
  /** Ack requests sent (separate protocol; carried acks ride on polls). */
  ackRequests: number;
  /** Requests sent, of every kind (resent ones included). */
  sent: number;
  /** Polls that ended with no delivery (the 30 s wait ran out, or an answer for nothing). */
  emptyPolls: number;
  /** Acks answered 200 with alreadyAcked false, by delivery id: each must appear once. */
  readonly acked: Map<string, string>;
  /** Acks answered alreadyAcked true (must stay 0: every agent acks each delivery once), but for those of a resent request. */
  alreadyAcked: number;
  /** Acks answered alreadyAcked true in the answer to a request sent again after a connection failure (the first copy may have been applied: harmless). */
  alreadyAckedResent: number;
  /** Acks not answered yet: carried ones queued for the next poll or in a poll under way; ack requests under way. */
  unanswered: number;
  /**
   * Requests sent again after a connection failure or a 408 before any answer (RETRIED_NETWORK_ERRORS: a
   * keep-alive socket the server closed as idle while the request went out, a connection the full
   * listen backlog dropped), as an agent retries.
   */
  resent: number;
  /** 503 answers (database.unavailable: no pool connection within its timeout) sent again after their Retry-After, as the agent does. */
  unavailable: number;
}

/** Connection failures an agent retries: a reset keep-alive socket, a connection the full listen backlog dropped or refused. */
const RETRIED_NETWORK_ERRORS = new Set(['ECONNRESET', 'ETIMEDOUT', 'ECONNREFUSED', 'EPIPE']);

export class SimulatedFleet {
  readonly stats: FleetStats = { polls: 0, emptyPolls: 0, acked: new Map(), ackRequests: 0, sent: 0, alreadyAcked: 0, alreadyAckedResent: 0, unanswered: 0, resent: 0, unavailable: 0 };
  private readonly agents: Agent[];
  private readonly bases: URL[];
  private turn = 0;
  private stopping = false;
  private failure: Error | undefined;
  private rejectFailed: (error: Error) => void = () => undefined;
  private readonly failedOnce = new Promise<never>((_, reject) => (this.rejectFailed = reject));
  private running: Promise<void>[] = [];

  constructor(
    private readonly machines: readonly SimulatedMachine[],
    baseUrls: readonly string[],
    private readonly protocol: FleetProtocol,
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

  /** Resolves when no carried ack waits for its answer (each parked poll answers within its 30 s), or after `ms`. */
  async answered(ms: number): Promise<void> {
    const until = performance.now() + ms;
    while (this.stats.unanswered > 0 && performance.now() < until) {
      this.throwIfFailed();
      await sleep(100);
    }
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
    const getPath = `${nodeApiPath(DELIVERIES_ROUTE)}?wait=${MAILBOX_MAX_WAIT_SECONDS}`;
    const postPath = `${nodeApiPath(DELIVERIES_POLL_ROUTE)}?wait=${MAILBOX_MAX_WAIT_SECONDS}`;
    /** The acks the next poll carries (carried protocol). */
    let carried: CarriedAck[] = [];
    while (!this.stopping) {
      let answer: HttpAnswer & { resent: boolean };
      try {
        answer = this.protocol === 'carried' ? await this.call(machine, 'POST', postPath, { acks: carried }) : await this.call(machine, 'GET', getPath, undefined);
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
      if (this.protocol === 'carried') {
        const acks = (answer.body as MailboxPollResponse).acks;
        if (!Array.isArray(acks) || acks.length !== carried.length) {
          throw new Error(`poll of ${machine.serial} answered ${String(acks?.length)} ack answers for ${carried.length} carried`);
        }
        acks.forEach((a, i) => this.count(machine, carried[i]!.id, a, answer.resent));
        this.stats.unanswered -= carried.length;
        carried = [];
      }
      const deliveries = (answer.body as MailboxResponse).deliveries;
      if (deliveries.length === 0) {
        this.stats.emptyPolls += 1;
        continue;
      }
      for (const delivery of deliveries) {
        const proof = unwrap(machine, delivery.id, Buffer.from(delivery.envelope, 'base64')).toString('base64');
        if (this.protocol === 'carried') {
          carried.push({ id: delivery.id, proof });
          this.stats.unanswered += 1;
          continue;
        }
        this.stats.unanswered += 1;
        this.stats.ackRequests += 1;
        const acked = await this.call(machine, 'POST', nodeApiPath(deliveryAckRoute(delivery.id)), { proof });
        this.stats.unanswered -= 1;
        if (acked.status !== 200) {
          throw new Error(`ack of ${delivery.id} by ${machine.serial} answered ${acked.status}: ${JSON.stringify(acked.body)}`);
        }
        this.count(machine, delivery.id, acked.body, acked.resent);
      }
    }
  }

  /** One ack's answer: acked new once per delivery; alreadyAcked counted apart (harmless after a resent request). */
  private count(machine: SimulatedMachine, deliveryId: MailboxDelivery['id'], answer: unknown, resent: boolean): void {
    const body = answer as { deliveryId?: string; state?: string; alreadyAcked?: boolean; refused?: unknown };
    if (body.state !== 'acked' || body.deliveryId !== deliveryId) {
      throw new Error(`ack of ${deliveryId} by ${machine.serial} answered ${JSON.stringify(answer)}`);
    }
    if (body.alreadyAcked === true) {
      if (resent) {
        this.stats.alreadyAckedResent += 1;
      } else {
        this.stats.alreadyAcked += 1;
      }
      return;
    }
    if (this.stats.acked.has(deliveryId)) {
      throw new Error(`delivery ${deliveryId} acked twice as new`);
    }
    this.stats.acked.set(deliveryId, machine.id);
  }

  /** `resent`: the request went out more than once (after a connection failure or a 503), so an earlier copy may have been applied. */
  private async call(machine: SimulatedMachine, method: 'GET' | 'POST', path: string, body: unknown): Promise<HttpAnswer & { resent: boolean }> {
    let resent = false;
    for (let attempt = 0; ; attempt += 1) {
      try {
        const answer = await this.callOnce(machine, method, path, body);
        if (answer.status === 503 && !this.stopping) {
          this.stats.unavailable += 1;
          resent = true;
          await sleep(answer.retryAfter * 1000);
          attempt = -1;
          continue;
        }
        if (answer.status === 408 && attempt < 5 && !this.stopping) {
          // The server's request timeout ran out before it read the request (a saturated event loop): nothing was taken, send it again.
          this.stats.resent += 1;
          resent = true;
          await sleep(100 * (attempt + 1));
          continue;
        }
        return { ...answer, resent };
      } catch (error) {
        if (!(error instanceof RequestFailedError && RETRIED_NETWORK_ERRORS.has(error.code ?? '')) || attempt >= 5 || this.stopping) {
          throw error;
        }
        this.stats.resent += 1;
        resent = true;
        await sleep(100 * (attempt + 1));
      }
    }
  }

  private callOnce(machine: SimulatedMachine, method: 'GET' | 'POST', path: string, body: unknown): Promise<HttpAnswer> {
    const { bytes, headers } = jsonBody(body);
    const signed = signNodeRequest({ credential: machine.credential, method, path, body: bytes, now: new Date(), nonce: randomBytes(16) });
    this.stats.sent += 1;
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
