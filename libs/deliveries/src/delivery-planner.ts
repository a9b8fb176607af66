import { Inject, Injectable } from '@nestjs/common';
import { type ApprovalEpochHook, AttestedMachineHook, MachineWrappingKeys } from '@rackseal/attestation';
import { AuditLog } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { type Machine, MachinesRepository } from '@rackseal/machines';
import { Clock, RandomSource } from '@rackseal/platform';
import { attestedTargetsOf, SecretsRepository, type SecretVersionHook, type SecretVersionTrigger, type StoredSecret, type StoredSecretVersion } from '@rackseal/secrets';
import type { EntityManager } from 'typeorm';
import { DeliveriesRepository } from './deliveries.repository';
import { PrewrapPlanner } from './prewrap-planner';

/** Who plans deliveries on a machine's attestation or key certification. */
export const DELIVERIES_SYSTEM_ACTOR = 'system:deliveries';

/**
 * The decisions that create deliveries, each inside the transaction of the decision that causes it
 * (so a delivery and its outbox row exist if and only if that decision committed):
 *
 * - a secret version created (libs/secrets' SecretVersionHook: create, rotate): one delivery per
 *   target machine that is attested and has what the binding needs (a live certified key for
 *   `certified-key`, the EK of a current attestation for `pcr-sealed`);
 * - a machine attested (libs/attestation's AttestedMachineHook): the current version of every secret
 *   targeting it or its group, and its failed deliveries of those versions made pending again;
 * - a machine's key certified: the same, which adds the `certified-key` ones it could not have before;
 * - a group's approval epoch bumped (libs/attestation's ApprovalEpochHook): its `pcr-sealed`
 *   deliveries of current versions are sealed again at the new epoch (a new round of each);
 * - pre-wrapped disk keys (issue 14 item 6, PrewrapPlanner): a disk version plans them for the
 *   target's machines not attested yet, and a machine's attestation makes its pre-wraps pending.
 *
 * Each decision that plans anything appends one `delivery.planned` record (ids, counts; no material).
 */
@Injectable()
export class DeliveryPlanner implements SecretVersionHook, AttestedMachineHook, ApprovalEpochHook {
  constructor(
    private readonly deliveries: DeliveriesRepository,
    private readonly secrets: SecretsRepository,
    private readonly machines: MachinesRepository,
    private readonly wrappingKeys: MachineWrappingKeys,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
    private readonly prewraps: PrewrapPlanner,
  ) {}

  async versionCreated(event: { secret: StoredSecret; version: StoredSecretVersion; trigger: SecretVersionTrigger; actor: string }, m: EntityManager): Promise<void> {
    const { secret, version } = event;
    // Before reading the targets: an attestation finishing at once plans after this commits, or this after it.
    await this.deliveries.lockPlanning([secret.targetMachineId !== null ? `machine:${secret.targetMachineId}` : `group:${secret.targetGroup!}`], m);
    const targets = await attestedTargetsOf(this.machines, secret, m);
    const ready = await this.wrappingKeys.ready(targets.map((t) => t.id), secret.binding, m);
    const at = this.clock.now();
    const planned = await this.deliveries.plan(
      targets.filter((t) => ready.has(t.id)).map((t) => ({ id: this.random.uuid(), secretId: secret.id, versionId: version.id, machineId: t.id, binding: secret.binding })),
      at,
      this.expiry(at),
      m,
    );
    await this.audit.append(
      {
        actor: event.actor,
        action: 'delivery.planned',
        subject: `secret:${secret.name}`,
        outcome: 'success',
        details: { trigger: event.trigger, name: secret.name, id: secret.id, version: version.version, versionId: version.id, binding: secret.binding, deliveries: planned.length, waiting: targets.length - ready.size },
      },
      m,
    );
    if (secret.kind === 'disk' && secret.binding === 'pcr-sealed') {
      await this.prewraps.versionCreated({ secretName: secret.name, versionId: version.id, actor: event.actor }, m);
    }
  }

  async epochBumped(event: { group: string; fromEpoch: number; toEpoch: number; actor: string }, m: EntityManager): Promise<void> {
    const at = this.clock.now();
    const rounds = await this.deliveries.rewrapForGroup(event.group, at, this.expiry(at), m);
    await this.audit.append(
      {
        actor: event.actor,
        action: 'delivery.rewrap-planned',
        subject: `group:${event.group}`,
        outcome: 'success',
        details: { group: event.group, fromEpoch: event.fromEpoch, toEpoch: event.toEpoch, deliveries: rounds.length },
      },
      m,
    );
  }

  attested(machine: Machine, _at: Date, m: EntityManager): Promise<void> {
    return this.planForMachine(machine, 'machine.attested', m);
  }

  keyCertified(machine: Machine, _at: Date, m: EntityManager): Promise<void> {
    return this.planForMachine(machine, 'key.certified', m);
  }

  private async planForMachine(machine: Machine, trigger: 'machine.attested' | 'key.certified', m: EntityManager): Promise<void> {
    await this.deliveries.lockPlanning([`machine:${machine.id}`, ...(machine.group === null ? [] : [`group:${machine.group}`])], m);
    // Its disk keys pre-wrapped at import become its deliveries first (same versions: the keys its disks hold).
    const confirmed = trigger === 'machine.attested' ? await this.prewraps.confirm(machine, m) : [];
    const current = await this.secrets.latestVersionsTargeting(machine.id, machine.group, m);
    if (current.length === 0 && confirmed.length === 0) {
      return;
    }
    const withKey = await this.wrappingKeys.ready([machine.id], 'certified-key', m);
    const withEk = await this.wrappingKeys.ready([machine.id], 'pcr-sealed', m);
    const fit = current.filter(({ secret }) => (secret.binding === 'certified-key' ? withKey : withEk).has(machine.id));
    const at = this.clock.now();
    const planned = await this.deliveries.plan(
      fit.map(({ secret, version }) => ({ id: this.random.uuid(), secretId: secret.id, versionId: version.id, machineId: machine.id, binding: secret.binding })),
      at,
      this.expiry(at),
      m,
    );
    const rearmed = await this.deliveries.rearm({ machineId: machine.id, versionIds: fit.map(({ version }) => version.id) }, at, this.expiry(at), m);
    if (planned.length + rearmed.length + confirmed.length === 0) {
      return;
    }
    await this.audit.append(
      {
        actor: DELIVERIES_SYSTEM_ACTOR,
        action: 'delivery.planned',
        subject: `machine:${machine.id}`,
        outcome: 'success',
        details: { trigger, machineId: machine.id, serial: machine.serial, deliveries: planned.length, rearmed: rearmed.length, prewrapsConfirmed: confirmed.length, waiting: current.length - fit.length },
      },
      m,
    );
  }

  private expiry(at: Date): Date {
    return new Date(at.getTime() + this.config.deliveries.expiryMs);
  }
}
