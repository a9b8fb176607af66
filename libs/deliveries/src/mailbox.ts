import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { AuditLog } from '@rackseal/audit';
import type { Machine } from '@rackseal/machines';
import {
  ACK_PROOF_BYTES,
  type AckDeliveryResponse,
  type CarriedAckAnswer,
  MAILBOX_MAX_CARRIED_ACKS,
  MAILBOX_MAX_DELIVERIES,
  MAILBOX_MAX_WAIT_SECONDS,
  type MailboxPollResponse,
  type MailboxResponse,
} from '@rackseal/node-api-contracts';
import { Clock, MicroBatcher } from '@rackseal/platform';
import { DeliveriesRepository, type MailboxRow } from './deliveries.repository';
import { DeliveryError } from './delivery-errors';
import { DeliveryNotifications } from './delivery-notifications';
import { VersionRetirement } from './version-retirement';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Long polls one machine may hold open in one process. The agent holds one; a restarted agent's
 * old one may linger until its socket is seen closed. A further wait ends the oldest at once (it
 * answers what is ready, and its agent polls again): a machine cannot pile up sockets and timers,
 * and a wait left behind by a connection that died without a FIN never locks the agent out.
 */
export const MAILBOX_MAX_WAITS_PER_MACHINE = 4;

/**
 * Mailbox reads (and acks) handled by one statement (one transaction) at most, and statements under
 * way at once: a rotation wakes thousands of polls within a second, and their reads and acks are
 * batched (a MicroBatcher each; docs/decisions.md, "Delivery throughput") instead of costing a round
 * trip each; an ack batch is one statement ("Acks in one statement").
 */
const MAILBOX_BATCH = { maxBatch: 256, maxInFlight: 2 };

/** One ack in a batch: the caller, the delivery id (lowercase UUID) and the proof's bytes, checked for form. */
interface AckInput {
  readonly caller: MailboxCaller;
  readonly id: string;
  readonly proof: Buffer;
}

/** What a batch answers one ack: acked (now or already), or a refusal to audit with its details. */
type AckOutcome = { readonly ok: AckDeliveryResponse } | { readonly refused: DeliveryError; readonly details: Record<string, string | null> };

/** The calling machine, as the node request guard authenticated it. */
export interface MailboxCaller {
  readonly credentialId: string;
  readonly machine: Machine;
}

/**
 * The machine's mailbox (issue 14 item 2): its ready deliveries, by long poll, and their acks. Any
 * control-plane replica answers: each process subscribes once to the deliveries' notifications and
 * wakes its waiting requests by machine id; a request registers its wait before it reads PostgreSQL,
 * so a delivery made ready in between wakes it rather than being missed.
 */
@Injectable()
export class Mailbox {
  private readonly waiting = new Map<string, Set<() => void>>();
  /** The notifications' subscription: resolves when subscribed, never rejects (a failure is forgotten, to try again). */
  private subscribed: Promise<void> | undefined;
  private readonly reads = new MicroBatcher<string, MailboxRow[]>(async (machineIds) => {
    const ready = await this.deliveries.readyForMany(machineIds, MAILBOX_MAX_DELIVERIES);
    return machineIds.map((id) => ready.get(id) ?? []);
  }, MAILBOX_BATCH);
  private readonly acks = new MicroBatcher<AckInput, AckOutcome>((inputs) => this.ackMany(inputs), MAILBOX_BATCH);

  constructor(
    private readonly deliveries: DeliveriesRepository,
    private readonly notifications: DeliveryNotifications,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly retirement: VersionRetirement,
  ) {}

  /** Parses `wait` (whole seconds, 0-30; absent: 0). */
  static waitSeconds(text: string | undefined): number {
    if (text === undefined) {
      return 0;
    }
    if (!/^\d{1,2}$/.test(text) || Number(text) > MAILBOX_MAX_WAIT_SECONDS) {
      throw new DeliveryError('delivery.invalid', `wait must be a whole number of seconds from 0 to ${MAILBOX_MAX_WAIT_SECONDS}`);
    }
    return Number(text);
  }

  /**
   * The caller's ready deliveries: at once when there are any (or `waitSeconds` is 0), else when one
   * becomes ready, the wait ends, `abandoned` fires (the client went away) or a newer wait of the
   * same machine takes its place (MAILBOX_MAX_WAITS_PER_MACHINE). The subscription to the
   * notifications is awaited within the wait only: with Redis unreachable a wait answers at its end
   * from PostgreSQL, like a lost message, rather than hanging until Redis is back.
   */
  async poll(caller: MailboxCaller, waitSeconds: number, abandoned: AbortSignal): Promise<MailboxResponse> {
    const machineId = caller.machine.id;
    if (waitSeconds === 0) {
      return answer(await this.reads.submit(machineId));
    }
    let wake: () => void = () => undefined;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const waiters = this.waiting.get(machineId) ?? new Set();
    for (const oldest of waiters) {
      if (waiters.size < MAILBOX_MAX_WAITS_PER_MACHINE) {
        break;
      }
      waiters.delete(oldest);
      oldest();
    }
    waiters.add(wake);
    this.waiting.set(machineId, waiters);
    const timer = setTimeout(wake, waitSeconds * 1000);
    abandoned.addEventListener('abort', wake, { once: true });
    try {
      await Promise.race([this.subscription(), woken]);
      const now = await this.reads.submit(machineId);
      if (now.length > 0 || abandoned.aborted) {
        return answer(now);
      }
      await woken;
      return answer(abandoned.aborted ? [] : await this.reads.submit(machineId));
    } finally {
      clearTimeout(timer);
      abandoned.removeEventListener('abort', wake);
      waiters.delete(wake);
      if (waiters.size === 0 && this.waiting.get(machineId) === waiters) {
        this.waiting.delete(machineId);
      }
    }
  }

  /** Subscribes once per process; a failed subscription is tried again by the next wait. */
  private subscription(): Promise<void> {
    this.subscribed ??= this.notifications.subscribe((id) => this.wakeUp(id)).catch(() => {
      this.subscribed = undefined;
    });
    return this.subscribed;
  }

  /** How many requests wait in this process (for tests and metrics). */
  waitingCount(): number {
    let n = 0;
    this.waiting.forEach((w) => (n += w.size));
    return n;
  }

  private wakeUp(machineId: string): void {
    this.waiting.get(machineId)?.forEach((wake) => wake());
  }

  /**
   * Acknowledges one of the caller's deliveries with the proof of unwrap: SHA-256(proof) compared
   * with the stored hash (in the ack statement: a comparison of digests of the caller's input). ready → acked once; a second ack with the right proof is
   * answered `alreadyAcked` and changes nothing. Refusals are audited (`delivery.ack-refused`) and
   * change nothing: unknown id or another machine's delivery (`delivery.not-found`, the same answer
   * for both), a wrong proof (`delivery.bad-proof`), a delivery not ready (`delivery.not-ready`).
   */
  async ack(caller: MailboxCaller, deliveryId: string, body: unknown): Promise<AckDeliveryResponse> {
    const decided = await this.decide(caller, deliveryId, body);
    if (decided instanceof DeliveryError) {
      throw decided;
    }
    return decided;
  }

  /**
   * The poll that carries acks (POST …/deliveries/poll; docs/decisions.md, "One request per
   * delivery"): each carried ack decided exactly as `ack` decides one — the same batches, checks,
   * answers and audit records — and answered in place (a refusal does not refuse the others or the
   * poll); then, once they are committed, the mailbox answered as `poll` answers it, so a delivery
   * acked here is not answered again. A body that is not `{ "acks": [ { "id", "proof" }, … ] }` with
   * at most MAILBOX_MAX_CARRIED_ACKS acks is refused as a whole (`delivery.invalid`, audited, nothing
   * acked). A database failure fails the request (503); the acks it committed stay acked, and the
   * agent carries them again (answered `alreadyAcked`).
   */
  async pollCarrying(caller: MailboxCaller, body: unknown, waitSeconds: number, abandoned: AbortSignal): Promise<MailboxPollResponse> {
    const carried = parseCarried(body);
    if (carried === undefined) {
      const error = new DeliveryError('delivery.invalid', `the body must be { "acks": [ { "id": <delivery id>, "proof": <${ACK_PROOF_BYTES} bytes, base64> }, … at most ${MAILBOX_MAX_CARRIED_ACKS} ] }`);
      await this.auditRefusal(caller, error, { deliveryId: null });
      throw error;
    }
    const acks = await Promise.all(
      carried.map(async ({ id, rest }): Promise<CarriedAckAnswer> => {
        const decided = await this.decide(caller, id, rest);
        return decided instanceof DeliveryError ? { refused: { code: decided.code, message: decided.message } } : decided;
      }),
    );
    return { ...(await this.poll(caller, waitSeconds, abandoned)), acks };
  }

  /** One ack decided (validated, batched, answered); a refusal audited and returned. */
  private async decide(caller: MailboxCaller, deliveryId: string, body: unknown): Promise<AckDeliveryResponse | DeliveryError> {
    const refused = async (error: DeliveryError, details: Record<string, string | null>): Promise<DeliveryError> => {
      await this.auditRefusal(caller, error, details);
      return error;
    };
    if (!UUID.test(deliveryId)) {
      return refused(new DeliveryError('delivery.not-found', 'no such delivery for this machine'), { deliveryId: null });
    }
    const id = deliveryId.toLowerCase();
    const proof = parseProof(body);
    if (proof === undefined) {
      return refused(new DeliveryError('delivery.invalid', `the body must be { "proof": <${ACK_PROOF_BYTES} bytes, base64> }`), { deliveryId: id });
    }
    const outcome = await this.acks.submit({ caller, id, proof });
    if ('refused' in outcome) {
      return refused(outcome.refused, outcome.details);
    }
    return outcome.ok;
  }

  private async auditRefusal(caller: MailboxCaller, error: DeliveryError, details: Record<string, string | null>): Promise<void> {
    await this.audit.append({
      actor: `node-credential:${caller.credentialId}`,
      action: 'delivery.ack-refused',
      subject: `machine:${caller.machine.id}`,
      outcome: 'refused',
      details: { code: error.code, reason: error.message, machineId: caller.machine.id, ...details },
    });
  }

  /**
   * The acks of a batch in one statement (DeliveriesRepository.ackMany: lock, owner, proof hash,
   * `ready → acked`, the `delivery.acked` records — one round trip, one commit), then, for each
   * version it acked, the retirement check in its own short transaction after that commit
   * (VersionRetirement.afterCommittedAck): the version's row is no longer locked by every batch.
   * Refusals are answered for the caller to audit (outside the batch), one record each.
   */
  private async ackMany(inputs: readonly AckInput[]): Promise<AckOutcome[]> {
    const now = this.clock.now();
    const actors = inputs.map((i) => `node-credential:${i.caller.credentialId}`);
    const audit = {
      action: 'delivery.acked',
      outcome: 'success' as const,
    };
    const recordedAt = this.audit.statementRecordedAt(inputs.map((i, n) => ({ ...audit, actor: actors[n]!, subject: `delivery:${i.id}`, details: { deliveryId: i.id, machineId: i.caller.machine.id } })));
    const decisions = await this.deliveries.ackMany(
      inputs.map((i, n) => ({ id: i.id, machineId: i.caller.machine.id, proofHash: createHash('sha256').update(i.proof).digest(), actor: actors[n]! })),
      now,
      { ...audit, recordedAt },
    );
    // The last ack of a version retires the ones before it (versions in id order, as before).
    const versions = [...new Set(decisions.flatMap((d) => (d.kind === 'acked' && !d.alreadyAcked && d.versionId !== null ? [d.versionId] : [])))].sort();
    for (const versionId of versions) {
      await this.retirement.afterCommittedAck(versionId, now);
    }
    return decisions.map((d, index): AckOutcome => {
      const id = inputs[index]!.id;
      switch (d.kind) {
        case 'acked':
          return { ok: { deliveryId: id, state: 'acked', alreadyAcked: d.alreadyAcked, ackedAt: d.ackedAt.toISOString() } };
        case 'not-found':
          // Another machine's delivery is named in the record only: the caller learns nothing of it.
          return { refused: new DeliveryError('delivery.not-found', 'no such delivery for this machine'), details: { deliveryId: id, ownerId: d.ownerId } };
        case 'not-ready':
          return { refused: new DeliveryError('delivery.not-ready', `delivery ${id} is ${d.state ?? 'changing'}, not ready`), details: { deliveryId: id, state: d.state } };
        case 'bad-proof':
          return { refused: new DeliveryError('delivery.bad-proof', `the proof of unwrap of delivery ${id} is wrong`), details: { deliveryId: id, state: d.state } };
      }
    });
  }
}

function answer(rows: readonly MailboxRow[]): MailboxResponse {
  return {
    deliveries: rows.map((r) => ({ id: r.id, secret: r.secretName, kind: r.kind, version: r.version, binding: r.binding, envelope: r.envelope.toString('base64') })),
  };
}

/**
 * The carried acks of a POST poll: an object with exactly `acks`, an array of at most
 * MAILBOX_MAX_CARRIED_ACKS objects. Each ack's own fields are checked by `decide` as the ack
 * route checks its id and body (an id that is not a UUID: not-found; anything but one proof:
 * invalid), so each is refused and audited on its own.
 */
function parseCarried(body: unknown): { id: string; rest: Record<string, unknown> }[] | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body) || Object.keys(body).length !== 1) {
    return undefined;
  }
  const acks = (body as { acks?: unknown }).acks;
  if (!Array.isArray(acks) || acks.length > MAILBOX_MAX_CARRIED_ACKS || acks.some((a) => a === null || typeof a !== 'object' || Array.isArray(a))) {
    return undefined;
  }
  return (acks as Record<string, unknown>[]).map(({ id, ...rest }) => ({ id: typeof id === 'string' ? id : '', rest }));
}

function parseProof(body: unknown): Buffer | undefined {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return undefined;
  }
  const keys = Object.keys(body);
  const proof = (body as { proof?: unknown }).proof;
  if (keys.length !== 1 || typeof proof !== 'string' || proof.length > 64 || !BASE64.test(proof)) {
    return undefined;
  }
  const bytes = Buffer.from(proof, 'base64');
  return bytes.length === ACK_PROOF_BYTES ? bytes : undefined;
}
