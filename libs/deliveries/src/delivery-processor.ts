import { createHash } from 'node:crypto';
import { Injectable, Logger } from '@nestjs/common';
import { DomainError } from '@rackseal/api-contracts';
import { MachineWrappingKeys, type WrappingKeys } from '@rackseal/attestation';
import { type AuditEntry, AuditLog } from '@rackseal/audit';
import { type Machine, MachinesRepository } from '@rackseal/machines';
import { Clock, MicroBatcher } from '@rackseal/platform';
import { ClusterCasRepository, SecretMaterials, SecretsRepository, type StoredSecret, type StoredSecretVersion } from '@rackseal/secrets';
import { DataSource, type EntityManager } from 'typeorm';
import { DeliveriesRepository, type DeliveryRound, type StoredDelivery } from './deliveries.repository';
import { DeliveryError } from './delivery-errors';
import { DeliveryNotifications } from './delivery-notifications';
import { serialiseDeliveryPayload } from './delivery-payload';
import { EnvelopeSealer } from './envelope-sealer';
import { cancelForRevokedMachine } from './revoked-machine-cancel';
import { DELIVERIES_SYSTEM_ACTOR } from './delivery-planner';

export type DeliverOutcome = 'ready' | 'no-op' | 'cancelled';

/** A failure no further attempt can fix (the delivery is `failed` already): the job must not retry. */
export class DeliveryGaveUpError extends Error {
  constructor(readonly code: string) {
    super(`delivery failed for good: ${code}`);
    this.name = 'DeliveryGaveUpError';
  }
}

/** Batches of the processor's statements: size, and how many run at once (each holds a pool connection). */
const PROCESSOR_BATCH = { maxBatch: 128, maxInFlight: 2 };

/** What a delivery is sealed for on its machine (the machine undefined when it is gone). */
interface SealingContext {
  readonly machine: Machine | undefined;
  readonly keys: WrappingKeys;
}

/** A sealed delivery waiting for its `pending → ready` in a batch, with its record's details. */
interface ReadyInput {
  readonly delivery: StoredDelivery;
  readonly envelope: Buffer;
  readonly proofHash: Buffer;
  readonly details: Record<string, string | number>;
}

/** Secret versions (with their secret) a worker keeps read (versionOf); past it the map starts again. */
const VERSIONS_KEPT = 256;

/** Kinds of domain errors that another attempt cannot change. */
const PERMANENT_KINDS = new Set(['invalid', 'not-found']);

/**
 * The `delivery.deliver` job's work (the worker's handler calls it). Safe to run twice or at once: a
 * delivery that is not pending in this round is left alone; material comes from the idempotent
 * `materialFor`; the seal may run twice, but only one conditional `pending → ready` update writes an
 * envelope, and only its winner audits and notifies. A failure keeps its code (never its message,
 * which might say more than a code should) and is thrown for BullMQ's backoff; on the last attempt,
 * or for a failure no attempt can fix, the delivery becomes `failed` (the dead letter the operator
 * lists and retries).
 */
@Injectable()
export class DeliveryProcessor {
  private readonly logger = new Logger('DeliveryProcessor');
  private readonly versions = new Map<string, { version: StoredSecretVersion; secret: StoredSecret }>();
  // The database work of concurrent jobs of this worker, batched (docs/decisions.md, "Delivery throughput").
  private readonly attempts = new MicroBatcher<DeliveryRound, StoredDelivery | undefined>(async (rounds) => {
    const counted = new Map((await this.deliveries.countAttempts(rounds, this.clock.now())).map((d) => [d.id, d]));
    // A round named twice in a batch was counted once: the first run has it, the second is a no-op.
    return rounds.map((r) => {
      const row = counted.get(r.deliveryId);
      if (row === undefined || row.generation !== r.generation) {
        return undefined;
      }
      counted.delete(r.deliveryId);
      return row;
    });
  }, PROCESSOR_BATCH);
  private readonly sealingContexts = new MicroBatcher<string, SealingContext>((ids) => this.sealingContextBatch(ids), PROCESSOR_BATCH);
  private readonly readies = new MicroBatcher<ReadyInput, boolean>((inputs) => this.markReadyBatch(inputs), PROCESSOR_BATCH);
  private readonly notices = new MicroBatcher<string, void>(async (ids) => {
    await this.notifications.publish(...ids);
    return ids.map(() => undefined);
  }, PROCESSOR_BATCH);

  constructor(
    private readonly dataSource: DataSource,
    private readonly deliveries: DeliveriesRepository,
    private readonly machines: MachinesRepository,
    private readonly wrappingKeys: MachineWrappingKeys,
    private readonly secrets: SecretsRepository,
    private readonly materials: SecretMaterials,
    private readonly cas: ClusterCasRepository,
    private readonly sealer: EnvelopeSealer,
    private readonly notifications: DeliveryNotifications,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  async deliver(deliveryId: string, generation: number, lastAttempt: boolean): Promise<DeliverOutcome> {
    const delivery = await this.attempts.submit({ deliveryId, generation });
    if (delivery === undefined) {
      return 'no-op';
    }
    try {
      return await this.seal(delivery);
    } catch (error) {
      const code = failureCodeOf(error);
      const permanent = error instanceof DomainError && PERMANENT_KINDS.has(error.kind);
      if (lastAttempt || permanent) {
        await this.fail(delivery, code);
        throw new DeliveryGaveUpError(code);
      }
      await this.deliveries.recordError(deliveryId, generation, code, this.clock.now());
      this.logger.warn({ deliveryId, generation, code }, 'delivery attempt failed; BullMQ retries it');
      throw error;
    }
  }

  private async seal(delivery: StoredDelivery): Promise<DeliverOutcome> {
    const { machine, keys } = await this.sealingContexts.submit(delivery.machineId);
    if (machine === undefined || machine.state === 'revoked') {
      return cancelForRevokedMachine(this.dataSource, this.deliveries, delivery.id, this.clock.now(), (m) => this.record({ action: 'delivery.cancelled' }, delivery, { reason: 'machine revoked' }, m));
    }
    if (machine.state !== 'attested' && machine.state !== 'attesting') {
      throw new DeliveryError('delivery.machine-not-attested', `machine ${machine.serial} is ${machine.state}`);
    }
    if (keys.ekPublic === undefined) {
      throw new DeliveryError('delivery.no-ek', `machine ${machine.serial} has no current attestation`);
    }
    if (delivery.binding === 'certified-key' && keys.certifiedKeyPublic === undefined) {
      throw new DeliveryError('delivery.no-certified-key', `machine ${machine.serial} has no live certified key`);
    }
    const { version, secret } = await this.versionOf(delivery);
    const payload = await this.payloadOf(secret, version, machine.id);
    let sealed;
    try {
      sealed = await this.sealer.seal({
        deliveryId: delivery.id,
        secretVersion: version.version,
        binding: delivery.binding,
        machine: { id: machine.id, group: machine.group, ekPublic: keys.ekPublic, ...(keys.certifiedKeyPublic === undefined ? {} : { certifiedKeyPublic: keys.certifiedKeyPublic }) },
        payload,
      });
    } finally {
      payload.fill(0);
    }
    const proofHash = createHash('sha256').update(sealed.ackProof).digest();
    sealed.ackProof.fill(0);
    const ready = await this.readies.submit({
      delivery,
      envelope: sealed.envelope,
      proofHash,
      details: { name: secret.name, version: version.version, envelopeBytes: sealed.envelope.length },
    });
    if (!ready) {
      return 'no-op';
    }
    await this.notices.submit(machine.id);
    return 'ready';
  }

  /**
   * The `pending → ready` of a batch of sealed deliveries in one transaction: one conditional UPDATE
   * (each in its round, still pending: a delivery another run, an ack, a cancel or a new round got
   * first stays as it is) and one `delivery.ready` record per row it changed. A delivery named twice
   * in a batch (two runs of its job at once) is written by the first only. Answers, per input,
   * whether its envelope was written.
   */
  private async markReadyBatch(inputs: readonly ReadyInput[]): Promise<boolean[]> {
    const first = new Map<string, ReadyInput>();
    inputs.forEach((i) => first.has(i.delivery.id) || first.set(i.delivery.id, i));
    const written = await this.dataSource.transaction(async (m) => {
      const rows = await this.deliveries.markReadyMany(
        [...first.values()].map((i) => ({ id: i.delivery.id, generation: i.delivery.generation, envelope: i.envelope, ackProofHash: i.proofHash })),
        this.clock.now(),
        m,
      );
      await this.audit.appendMany(
        rows.map((row) => this.recordOf({ action: 'delivery.ready' }, row, first.get(row.id)!.details)),
        m,
      );
      return new Set(rows.map((r) => r.id));
    });
    return inputs.map((i) => first.get(i.delivery.id) === i && written.has(i.delivery.id));
  }

  /** The machines of a batch of deliveries and their wrapping keys, one statement per table. */
  private async sealingContextBatch(machineIds: readonly string[]): Promise<SealingContext[]> {
    const machines = new Map((await this.machines.findByIds(machineIds)).map((m) => [m.id, m]));
    const keys = await this.wrappingKeys.ofMany(machineIds, this.dataSource.manager);
    return machineIds.map((id) => ({ machine: machines.get(id), keys: keys.get(id) ?? {} }));
  }

  /**
   * The secret version and its secret, read once per version by this process: a rotation's thousands
   * of jobs share them. What the seal reads of them (name, kind, number) never changes after the
   * version is created, and its sealed value opens under the master keys this process booted with
   * (a re-wrap under a new key changes the row, not the value); whether the delivery is still wanted
   * is decided by the fenced `pending → ready` update, not by these rows.
   */
  private async versionOf(delivery: StoredDelivery): Promise<{ version: StoredSecretVersion; secret: StoredSecret }> {
    const known = this.versions.get(delivery.versionId);
    if (known !== undefined) {
      return known;
    }
    const version = await this.secrets.findVersion(delivery.versionId);
    const secret = await this.secrets.findById(delivery.secretId);
    if (version === undefined || secret === undefined) {
      throw new DeliveryError('delivery.not-found', `the secret version of delivery ${delivery.id} is gone`);
    }
    if (this.versions.size >= VERSIONS_KEPT) {
      this.versions.clear();
    }
    this.versions.set(version.id, { version, secret });
    return { version, secret };
  }

  /** The payload's bytes: the machine's material of the version (or the opaque value) with its public parts. */
  private async payloadOf(secret: StoredSecret, version: StoredSecretVersion, machineId: string): Promise<Buffer> {
    if (secret.kind === 'opaque') {
      const value = this.materials.openValue(version)!;
      return serialiseDeliveryPayload({ kind: secret.kind, name: secret.name, version: version.version, material: value.reveal() });
    }
    const material = (await this.materials.materialFor(version.id, machineId))!;
    const opened = this.materials.openMaterial(material);
    const ca = secret.kind === 'tls' ? await this.cas.find('tls') : secret.kind === 'kubelet-client' ? await this.cas.find('kubernetes') : undefined;
    try {
      return serialiseDeliveryPayload({
        kind: secret.kind,
        name: secret.name,
        version: version.version,
        material: opened.reveal(),
        ...(material.certificatePem === null ? {} : { certificatePem: material.certificatePem }),
        ...(ca === undefined ? {} : { caCertificatePem: ca.certificatePem }),
        ...(material.kubeletConf === null ? {} : { kubeletConf: material.kubeletConf }),
      });
    } finally {
      opened.reveal().fill(0);
    }
  }

  private async fail(delivery: StoredDelivery, code: string): Promise<void> {
    await this.dataSource.transaction(async (m) => {
      const row = await this.deliveries.markFailed(delivery.id, delivery.generation, code, this.clock.now(), m);
      if (row !== undefined) {
        await this.record({
          action: 'delivery.failed',
        }, delivery, { code, attempts: row.attempts }, m, 'failure');
      }
    });
  }

  private async record({ action }: { action: string }, delivery: StoredDelivery, details: Record<string, string | number>, m: EntityManager, outcome: 'success' | 'failure' = 'success'): Promise<void> {
    await this.audit.append(this.recordOf({ action }, delivery, details, outcome), m);
  }

  private recordOf({ action }: { action: string }, delivery: StoredDelivery, details: Record<string, string | number>, outcome: 'success' | 'failure' = 'success'): AuditEntry {
    return {
      actor: DELIVERIES_SYSTEM_ACTOR,
      action,
      subject: `delivery:${delivery.id}`,
      outcome,
      details: { deliveryId: delivery.id, machineId: delivery.machineId, versionId: delivery.versionId, generation: delivery.generation, binding: delivery.binding, ...details },
    };
  }
}

/** A failure's code: a domain error's own (`secret.machine-unfit`, `delivery.no-certified-key`), else `delivery.internal`. */
/** The code an attempt's failure is recorded with: a domain error's own, else `delivery.internal` (never a message). */
export function failureCodeOf(error: unknown): string {
  return error instanceof DomainError && /^[a-z][a-z0-9-]*\.[a-z0-9.-]{1,64}$/.test(error.code) ? error.code : 'delivery.internal';
}
