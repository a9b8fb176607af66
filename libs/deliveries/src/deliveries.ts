import { Inject, Injectable } from '@nestjs/common';
import { type DeliveryView, SECRET_NAME_PATTERN, type VersionDeliveryProgress } from '@rackseal/api-contracts';
import { AuditLog } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { MachineRefError, MachinesRepository, parseMachineRef } from '@rackseal/machines';
import { Clock } from '@rackseal/platform';
import { checkSecretName, SecretError, SecretsRepository } from '@rackseal/secrets';
import { DataSource } from 'typeorm';
import { DeliveriesRepository } from './deliveries.repository';
import { DeliveryError } from './delivery-errors';
import { DELIVERY_STATES, isDeliveryState } from './delivery-state';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The operator's view of deliveries (issue 14 item 1): the filtered list and the retry of a failed one. */
@Injectable()
export class Deliveries {
  constructor(
    private readonly dataSource: DataSource,
    private readonly deliveries: DeliveriesRepository,
    private readonly machines: MachinesRepository,
    private readonly secrets: SecretsRepository,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  /** Deliveries by id after `after`; a filter naming an unknown machine or secret answers an empty page. */
  async list(query: { state?: string; machine?: string; secret?: string; after?: string; limit: number }): Promise<DeliveryView<Date>[]> {
    if (query.state !== undefined && !isDeliveryState(query.state)) {
      throw new DeliveryError('delivery.invalid', `state must be one of ${DELIVERY_STATES.join(', ')}`);
    }
    if (query.after !== undefined && !UUID.test(query.after)) {
      throw new DeliveryError('delivery.invalid', 'after must be a delivery id (UUID)');
    }
    let machineId: string | undefined;
    if (query.machine !== undefined) {
      let ref;
      try {
        ref = parseMachineRef(query.machine);
      } catch (error) {
        if (error instanceof MachineRefError) {
          throw new DeliveryError('delivery.invalid', `machine: ${error.message}`);
        }
        throw error;
      }
      const machine = await this.machines.findByRef(ref);
      if (machine === undefined) {
        return [];
      }
      machineId = machine.id;
    }
    let secretId: string | undefined;
    if (query.secret !== undefined) {
      const secret = SECRET_NAME_PATTERN.test(query.secret) ? await this.secrets.findByName(query.secret) : undefined;
      if (secret === undefined) {
        return [];
      }
      secretId = secret.id;
    }
    return this.deliveries.list({
      limit: query.limit,
      ...(query.state === undefined ? {} : { state: query.state }),
      ...(machineId === undefined ? {} : { machineId }),
      ...(secretId === undefined ? {} : { secretId }),
      ...(query.after === undefined ? {} : { after: query.after.toLowerCase() }),
    });
  }

  /** A version's rollout: its deliveries counted by state (`rackseal secrets rotate` waits on it). */
  async progress(name: string, versionText: string): Promise<VersionDeliveryProgress<Date>> {
    checkSecretName(name);
    if (!/^[1-9]\d{0,9}$/.test(versionText)) {
      throw new SecretError('secret.invalid', 'version must be a whole number from 1');
    }
    const secret = await this.secrets.findByName(name);
    const version = secret === undefined ? undefined : (await this.secrets.versionsOf(secret.id)).find((v) => v.version === Number(versionText));
    if (version === undefined) {
      throw new SecretError('secret.not-found', `no version ${versionText} of a secret named ${name}`);
    }
    const counts = await this.deliveries.countByState(version.id);
    const states = Object.fromEntries(DELIVERY_STATES.map((s) => [s, counts.get(s) ?? 0])) as VersionDeliveryProgress['states'];
    return {
      secret: name,
      version: version.version,
      retiredAt: version.retiredAt,
      total: DELIVERY_STATES.reduce((n, s) => n + states[s], 0),
      states,
      settled: states.pending + states.ready === 0,
    };
  }

  /** failed → pending as a new round with its outbox row, audited `delivery.retried`; refused for any other state. */
  async retry(id: string, actor: string): Promise<DeliveryView<Date>> {
    if (!UUID.test(id)) {
      throw new DeliveryError('delivery.not-found', 'no such delivery');
    }
    const deliveryId = id.toLowerCase();
    await this.dataSource.transaction(async (m) => {
      const delivery = await this.deliveries.find(deliveryId, m, true);
      if (delivery === undefined) {
        throw new DeliveryError('delivery.not-found', `no delivery ${deliveryId}`);
      }
      const now = this.clock.now();
      const [round] = await this.deliveries.rearm({ deliveryId }, now, new Date(now.getTime() + this.config.deliveries.expiryMs), m);
      if (round === undefined) {
        throw new DeliveryError('delivery.not-failed', `delivery ${deliveryId} is ${delivery.state}: only a failed delivery is retried`);
      }
      await this.audit.append(
        {
          actor,
          action: 'delivery.retried',
          subject: `delivery:${deliveryId}`,
          outcome: 'success',
          details: { deliveryId, machineId: delivery.machineId, versionId: delivery.versionId, generation: round.generation, lastError: delivery.lastError },
        },
        m,
      );
    });
    const [view] = await this.deliveries.list({ id: deliveryId, limit: 1 });
    return view!;
  }
}
