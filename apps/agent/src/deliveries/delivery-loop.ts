import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import {
  type AckDeliveryResponse,
  type ApprovalsResponse,
  type CarriedAckAnswer,
  DELIVERIES_POLL_ROUTE,
  DELIVERIES_ROUTE,
  deliveryAckRoute,
  type DeliveryPayload,
  type MailboxDelivery,
  type MailboxResponse,
  MAILBOX_MAX_CARRIED_ACKS,
  MAILBOX_MAX_WAIT_SECONDS,
  MailboxResponseError,
  nodeApiPath,
  parseDeliveryPayload,
  parseMailboxPollResponse,
  parseMailboxResponse,
} from '@rackseal/node-api-contracts';
import { type NodeCredential, signNodeRequest } from '@rackseal/node-identity';
import { parseEnvelope } from '@rackseal/wrapping';
import type { AgentConfig } from '../install/agent-config';
import { install, type InstallReport } from '../install/install';
import type { RacksealToken } from '../install/luks-token';
import { checkPayloadLabel } from './payload-label';
import { NodeApiClient, NodeApiRefusal } from '../node-api/node-api-client';
import { luksDeviceOf } from '../install/disk-install';
import { approvalsForEnvelope, loadCachedApprovals } from '../unlock/approvals-cache';
import { dropOlderEpochs, recordApprovals, storeApprovalsInTokens } from '../unlock/approvals-store';
import { loadCertifiedKey } from '../state/certified-key-state';
import { withTpmDevice } from '../tpm-device';
import { unwrapDelivery, unwrapEnvelope, type UnwrapKeys } from '../unwrap/unwrap-envelope';

/** A mailbox answer carries up to 100 envelopes of a few KiB (a disk's, a TLS chain's). */
const MAILBOX_MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
/** A delivery refused for a reason only an operator can change (config, payload, envelope): tried again after this. */
const REFUSED_RETRY_MS = 600_000;
/** A delivery that failed for a passing reason (TPM busy, server unreachable at the ack): tried again after this. */
const FAILED_RETRY_MS = 30_000;
/** While the mailbox holds only deliveries being held back, ask again this often (new ones may have come). */
const HELD_BACK_POLL_MS = 10_000;

/** How long each ack sent on stop may take (the service manager waits for the process: systemd's TimeoutStopSec is 90 s by default). */
const STOP_ACK_TIMEOUT_MS = 5_000;

/** Codes of refusals that another try with the same config and envelope cannot change. */
const FINAL_PREFIXES = ['install.', 'disk.', 'unwrap.', 'envelope.', 'delivery.invalid-payload'];

export interface DeliveryLoopOptions {
  readonly serverUrl: string;
  readonly tpm: string;
  readonly stateDir: string;
  readonly config: AgentConfig;
  /** The agent's per-request timeout; a long poll gets its wait on top. */
  readonly timeoutMs: number;
  /** The machine's EK (identity.json's ekPubHash): pcr-sealed envelopes are wrapped to it. */
  readonly ekPubHash: () => string;
  /** The current node credential (unsealed once per credential by `run`). */
  readonly credential: () => Promise<NodeCredential>;
  /** One JSON line on stdout, like `run`'s attestation lines. */
  readonly write: (line: Record<string, unknown>) => void;
}

/** An installed delivery whose ack the next poll carries. */
interface UnansweredAck {
  readonly delivery: MailboxDelivery;
  readonly proof: Buffer;
  readonly report: InstallReport;
  /** Its line written (answered by a poll or the ack route): never twice. */
  settled: boolean;
}

/** How a stretch of polling ended: `reattest` when the node credential is dead (revoked, or re-enrolled elsewhere). */
export type DeliveryLoopOutcome = 'ok' | 'unavailable' | 'reattest';

/**
 * The agent's side of the mailbox (issue 14 items 2-3; docs/decisions.md "Deliveries wired"): long
 * polls GET /node/v1/deliveries, and for each delivery unwraps the envelope in the TPM (approvals
 * from the server, else the state dir's cache, for pcr-sealed), parses the payload, installs it
 * where the config says, and only then acks with the proof of unwrap — carried by the next poll
 * (POST /node/v1/deliveries/poll; docs/decisions.md "One request per delivery"), whose answer says
 * how each ack went; the `delivered` line is written then. Against a control plane without that
 * route (404 route.not-found) the agent polls with GET and acks each delivery by its ack route, as
 * before. Crash-safe by construction: a delivery is acked after its install, never before, so an
 * agent that dies in between (or before the carrying poll) finds it in the mailbox again and
 * re-applies it — identical files are left alone, a disk generation already held changes nothing —
 * and acks it then. A delivery that cannot be installed is not acked: it is
 * reported (a JSON line with its code) and held back here, tried again after a while; on the server
 * it stays ready until the operator acts or it expires.
 */
export class DeliveryLoop {
  private readonly mailbox: NodeApiClient;
  private readonly api: NodeApiClient;
  /** Deliveries held back after a failure: id → when to try again. */
  private readonly heldBack = new Map<string, number>();
  /** Installed deliveries whose acks the next poll carries (answered with its answer). */
  private readonly unanswered: UnansweredAck[] = [];
  /** False once the server answered the POST poll route.not-found (a control plane before it): GET polls and the ack route then. */
  private carrying = true;

  constructor(private readonly options: DeliveryLoopOptions) {
    this.mailbox = new NodeApiClient({ serverUrl: options.serverUrl, attempts: 1, timeoutMs: options.timeoutMs + MAILBOX_MAX_WAIT_SECONDS * 1000, maxResponseBytes: MAILBOX_MAX_RESPONSE_BYTES });
    this.api = new NodeApiClient({ serverUrl: options.serverUrl, attempts: 3, timeoutMs: options.timeoutMs, baseDelayMs: 500 });
  }

  /**
   * Polls and delivers for about `ms` (each long poll at most 30 s), ending early when `stop` aborts
   * or the credential is dead. A mailbox the server refuses (a quarantined machine: 401
   * node.machine-not-attested) or cannot be reached makes the rest of the stretch a plain wait.
   */
  async runFor(ms: number, stop: AbortSignal): Promise<DeliveryLoopOutcome> {
    try {
      return await this.pollFor(ms, stop);
    } finally {
      if (stop.aborted) {
        await this.ackUnansweredOnStop();
      }
    }
  }

  /**
   * On stop (SIGTERM), the acks no poll has answered yet — taken by the server already, most often,
   * while their poll waited — go by the ack route, once each with a short timeout, so that the lines
   * (and the agent's counters) say what happened before the process ends. One that fails is left to
   * the next start, which finds its delivery in the mailbox if it was not acked.
   */
  private async ackUnansweredOnStop(): Promise<void> {
    const left = this.unanswered.splice(0);
    if (left.length === 0) {
      return;
    }
    const once = new NodeApiClient({ serverUrl: this.options.serverUrl, attempts: 1, timeoutMs: Math.min(this.options.timeoutMs, STOP_ACK_TIMEOUT_MS) });
    await Promise.all(left.map((pending) => this.ackByRoute(pending, once)));
  }

  private async pollFor(ms: number, stop: AbortSignal): Promise<DeliveryLoopOutcome> {
    const end = Date.now() + ms;
    while (!stop.aborted) {
      const left = end - Date.now();
      if (left < 1000) {
        await pause(left, stop);
        return 'ok';
      }
      let answer: MailboxResponse;
      try {
        answer = await abortable(this.poll(Math.min(MAILBOX_MAX_WAIT_SECONDS, Math.floor(left / 1000))), stop);
      } catch (error) {
        if (stop.aborted) {
          return 'ok';
        }
        if (error instanceof NodeApiRefusal && error.code === 'node.unknown-credential') {
          return 'reattest';
        }
        if (error instanceof MailboxResponseError) {
          // Not the mailbox (a proxy's page, a hostile server): said, and waited out like an unreachable one.
          this.options.write({ at: new Date().toISOString(), outcome: 'mailbox-invalid', code: error.code, message: error.message });
        }
        await pause(end - Date.now(), stop);
        return 'unavailable';
      }
      const now = Date.now();
      // Held back, or installed with its ack not carried yet (more than one poll carries): not again.
      const due = answer.deliveries.filter((d) => (this.heldBack.get(d.id) ?? 0) <= now && !this.unanswered.some((a) => a.delivery.id === d.id));
      for (const delivery of due) {
        if (stop.aborted) {
          return 'ok';
        }
        await this.deliver(delivery);
      }
      if (due.length === 0 && answer.deliveries.length > 0) {
        // Only held-back deliveries: the mailbox would answer them at once again.
        await pause(Math.min(HELD_BACK_POLL_MS, end - Date.now()), stop);
      }
    }
    return 'ok';
  }

  private async signed(method: 'GET' | 'POST', client: NodeApiClient, path: string, body?: unknown): Promise<unknown> {
    const credential = await this.options.credential();
    const response = await client.send(method, path, body, (bytes) => signNodeRequest({ credential, method, path, body: bytes, now: new Date(), nonce: randomBytes(16) }));
    return response.body;
  }

  /**
   * One long poll. Carrying: the POST poll with the unanswered acks (at most MAILBOX_MAX_CARRIED_ACKS,
   * oldest first); each answer settles its ack (a line, held back on a refusal) before the mailbox's
   * deliveries are looked at. A failed poll leaves them unanswered, carried again by the next (a
   * second ack of an acked delivery is answered alreadyAcked, nothing changes).
   */
  private async poll(waitSeconds: number): Promise<MailboxResponse> {
    if (!this.carrying) {
      return parseMailboxResponse(await this.signed('GET', this.mailbox, `${nodeApiPath(DELIVERIES_ROUTE)}?wait=${waitSeconds}`));
    }
    const sending = this.unanswered.slice(0, MAILBOX_MAX_CARRIED_ACKS);
    let body: unknown;
    try {
      body = await this.signed('POST', this.mailbox, `${nodeApiPath(DELIVERIES_POLL_ROUTE)}?wait=${waitSeconds}`, {
        acks: sending.map((a) => ({ id: a.delivery.id, proof: a.proof.toString('base64') })),
      });
    } catch (error) {
      if (!(error instanceof NodeApiRefusal && error.status === 404 && error.code === 'route.not-found')) {
        throw error;
      }
      // A control plane from before the POST poll: its ack route takes what is unanswered, and GET polls from now on.
      this.carrying = false;
      for (const pending of this.unanswered.splice(0)) {
        await this.ackByRoute(pending);
      }
      return this.poll(waitSeconds);
    }
    const answer = parseMailboxPollResponse(body, sending.map((a) => a.delivery.id));
    // By identity: a stop may have taken them meanwhile (ackUnansweredOnStop), and settled they stay settled.
    const answered = new Set(sending);
    this.unanswered.splice(0, this.unanswered.length, ...this.unanswered.filter((a) => !answered.has(a)));
    sending.forEach((pending, i) => this.settle(pending, answer.acks[i]!));
    return answer;
  }

  /** A carried ack's answer: the `delivered` line, or the refusal's line and the delivery held back, as an ack request's refusal was. */
  private settle(pending: UnansweredAck, answer: CarriedAckAnswer): void {
    if (pending.settled) {
      return;
    }
    pending.settled = true;
    try {
      if ('refused' in answer) {
        this.failed(pending.delivery, answer.refused.code, answer.refused.message);
        return;
      }
      this.heldBack.delete(pending.delivery.id);
      this.options.write({ at: new Date().toISOString(), outcome: 'delivered', ...aboutOf(pending.delivery), ...installed(pending.report), alreadyAcked: answer.alreadyAcked === true });
    } finally {
      pending.proof.fill(0);
    }
  }

  /** The ack route (a control plane without the POST poll); a refusal or failure held back and said, as before. */
  private async ackByRoute(pending: UnansweredAck, client = this.api): Promise<void> {
    try {
      const acked = (await this.signed('POST', client, nodeApiPath(deliveryAckRoute(pending.delivery.id)), { proof: pending.proof.toString('base64') })) as AckDeliveryResponse;
      this.settle(pending, acked);
    } catch (error) {
      if (!pending.settled) {
        pending.settled = true;
        pending.proof.fill(0);
        this.failed(pending.delivery, codeOf(error), messageOf(error));
      }
    }
  }

  /** A delivery not delivered: held back (longer when only an operator can change the outcome) and said in a line. */
  private failed(delivery: MailboxDelivery, code: string, message: string): void {
    const final = FINAL_PREFIXES.some((prefix) => code.startsWith(prefix));
    this.heldBack.set(delivery.id, Date.now() + (final ? REFUSED_RETRY_MS : FAILED_RETRY_MS));
    this.options.write({ at: new Date().toISOString(), outcome: final ? 'delivery-refused' : 'delivery-failed', ...aboutOf(delivery), code, message });
  }

  /**
   * One delivery: unwrap, parse, install; then its ack — queued for the next poll to carry (its line
   * written when that poll answers), or by the ack route when the server has no POST poll. A
   * refusal's line at once; never throws.
   */
  async deliver(delivery: MailboxDelivery): Promise<void> {
    let payload: DeliveryPayload<SecretBytes> | undefined;
    let proof: Buffer | undefined;
    try {
      const envelope = Buffer.from(delivery.envelope, 'base64');
      const keys = await this.unwrapKeys();
      const approvals = delivery.binding === 'pcr-sealed' ? await this.approvalsFor(envelope) : undefined;
      const opened = await withTpmDevice(this.options.tpm, (client) =>
        unwrapDelivery(client, envelope, keys, { ...(approvals === undefined ? {} : { approvals }), expect: { deliveryId: delivery.id, secretVersion: delivery.version } }),
      );
      proof = opened.ackProof;
      try {
        payload = parseDeliveryPayload(opened.payload, (bytes) => new SecretBytes(Buffer.from(bytes)));
      } finally {
        opened.payload.fill(0);
      }
      checkPayloadLabel(payload, delivery);
      const report = await install(
        {
          name: delivery.secret,
          kind: delivery.kind,
          version: delivery.version,
          deliveryId: delivery.id,
          payload,
          ...(delivery.binding === 'pcr-sealed' ? { envelope } : {}),
          ...(approvals === undefined ? {} : { approvals }),
        },
        this.options.config,
        { currentDiskKey: (token) => this.currentDiskKey(token) },
      );
      if (report.disk?.changed === true && approvals !== undefined) {
        await this.approvalsIntoToken(delivery.secret, approvals);
      }
      const refreshed = report.disk?.envelope;
      if (refreshed !== undefined) {
        // The withdrawn epoch's approvals open nothing this disk holds now: out of the cache too.
        await dropOlderEpochs(this.options.stateDir, refreshed.group, refreshed.toEpoch, this.diskDevices()).catch(() => undefined);
      }
      const pending: UnansweredAck = { delivery, proof: Buffer.from(proof), report, settled: false };
      if (this.carrying) {
        this.unanswered.push(pending);
      } else {
        await this.ackByRoute(pending);
      }
    } catch (error) {
      this.failed(delivery, codeOf(error), messageOf(error));
    } finally {
      proof?.fill(0);
      wipe(payload);
    }
  }

  /**
   * A disk's first rackseal token is written by its install, after approvalsFor recorded the
   * approvals (and found no token to put them in): the approvals the envelope was just opened with
   * go in now, before the ack, so the disk boots offline from its header without waiting for the
   * next attestation. Best effort, as refreshApprovals: the state dir's cache has them too.
   */
  private async approvalsIntoToken(secret: string, approvals: ApprovalsResponse): Promise<void> {
    const target = this.options.config.installs.get(secret);
    if (target?.kind === 'disk') {
      await storeApprovalsInTokens(approvals, [luksDeviceOf(target)]);
    }
  }

  private async unwrapKeys(): Promise<UnwrapKeys> {
    const certified = await loadCertifiedKey(this.options.stateDir);
    return { ekPubHash: this.options.ekPubHash(), ...(certified === undefined ? {} : { certifiedKey: certified.blob }) };
  }

  /**
   * The approvals a pcr-sealed envelope opens with: the server's answer (cached in the state dir for
   * the next time and for boot unlock), else the cached answer of the envelope's group and epoch.
   * `tokens: false` inside a disk install: the install holds its device's lock (disk-install.ts
   * serialized), and a token write waiting for that lock would wait for the install itself.
   */
  private async approvalsFor(envelope: Buffer, tokens = true): Promise<ApprovalsResponse | undefined> {
    const transport = parseEnvelope(envelope).transport;
    if (transport.binding !== 'pcr-sealed') {
      return undefined;
    }
    try {
      const fresh = await this.api.approvals(await this.options.credential());
      // The cache and the configured disks' tokens both: what boot unlock reads offline.
      await recordApprovals(this.options.stateDir, fresh, tokens ? { devices: this.diskDevices() } : {}).catch(() => undefined);
      if (fresh.group === transport.group && fresh.epoch === transport.epoch) {
        return fresh;
      }
    } catch {
      // Unreachable or refused: the cache may still hold the envelope's epoch.
    }
    const { entries } = await loadCachedApprovals(this.options.stateDir);
    return approvalsForEnvelope(entries.map((e) => e.approvals), transport.group, transport.epoch);
  }

  /**
   * After each attestation: the group's approvals fetched and recorded in the state dir's cache and
   * the configured disks' tokens (recordApprovals), so boot unlock opens offline in every state the
   * control plane approved since the disk key was delivered (a promote reaches the disk without a new
   * delivery). Best effort: a failure leaves the previous approvals, which still open their states.
   */
  async refreshApprovals(): Promise<void> {
    try {
      await recordApprovals(this.options.stateDir, await this.api.approvals(await this.options.credential()), { devices: this.diskDevices() });
    } catch {
      // Unreachable, refused, or a state dir we cannot write: the next attestation tries again.
    }
  }

  /** The LUKS devices of the config's disk installs, whose tokens carry approvals for boot unlock. */
  private diskDevices() {
    return [...this.options.config.installs.values()].flatMap((target) => (target.kind === 'disk' ? [luksDeviceOf(target)] : []));
  }

  /** A disk's current rackseal key, which authorises adding the next: its token's envelope unwrapped in the TPM, as boot unlock does. */
  private async currentDiskKey(token: RacksealToken): Promise<SecretBytes | undefined> {
    if (token.envelope === undefined) {
      return undefined;
    }
    try {
      const envelope = token.envelope;
      const keys = await this.unwrapKeys();
      const approvals = await this.approvalsFor(envelope, false);
      const bytes = await withTpmDevice(this.options.tpm, (client) => unwrapEnvelope(client, envelope, keys, approvals === undefined ? {} : { approvals }));
      try {
        const payload = parseDeliveryPayload(bytes, (b) => new SecretBytes(Buffer.from(b)));
        return payload.kind === 'disk' ? payload.key : undefined;
      } finally {
        bytes.fill(0);
      }
    } catch {
      // Not available (another epoch, PCRs not approved): the install tries the config's enrollKeyFile.
      return undefined;
    }
  }
}

/** What a line says of its delivery. */
function aboutOf(delivery: MailboxDelivery): Record<string, unknown> {
  return { deliveryId: delivery.id, secret: delivery.secret, kind: delivery.kind, version: delivery.version, binding: delivery.binding };
}

/** What an install did, for the line: paths and whether they changed, the disk's slot and generation, the reload's outcome. */
function installed(report: InstallReport): Record<string, unknown> {
  return {
    changed: report.changed,
    ...(report.files === undefined ? {} : { files: report.files.map((f) => ({ path: f.path, changed: f.changed })) }),
    ...(report.disk === undefined
      ? {}
      : { disk: { keyslot: report.disk.keyslot, generation: report.disk.generation, retired: report.disk.retired, ...(report.disk.envelope === undefined ? {} : { envelope: report.disk.envelope }) } }),
    ...(report.reload === undefined ? {} : { reload: report.reload }),
  };
}

function wipe(payload: DeliveryPayload<SecretBytes> | undefined): void {
  if (payload === undefined) {
    return;
  }
  const secret = payload.kind === 'opaque' ? payload.value : payload.kind === 'disk' ? payload.key : payload.keyPem;
  secret.reveal().fill(0);
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^[a-z][a-z0-9-]*\.[a-z0-9.-]{1,64}$/.test(code) ? code : 'delivery.agent-failure';
}

function messageOf(error: unknown): string {
  return error instanceof NodeApiRefusal ? error.serverMessage : error instanceof Error ? error.message : String(error);
}

async function pause(ms: number, stop: AbortSignal): Promise<void> {
  if (ms <= 0 || stop.aborted) {
    return;
  }
  await delay(ms, undefined, { signal: stop }).catch(() => undefined);
}

/** `work`, or a rejection as soon as `stop` aborts (SIGTERM during a 30 s poll ends the run at once). */
function abortable<T>(work: Promise<T>, stop: AbortSignal): Promise<T> {
  work.catch(() => undefined);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new Error('stopped'));
    if (stop.aborted) {
      onAbort();
      return;
    }
    stop.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => stop.removeEventListener('abort', onAbort));
  });
}
