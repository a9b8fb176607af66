import { Inject, Injectable } from '@nestjs/common';
import { type DeliveryView, SECRET_NAME_PATTERN } from '@rackseal/api-contracts';
import { AuditLog } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { MachineRefError, MachinesRepository, parseMachineRef } from '@rackseal/machines';
import { Clock } from '@rackseal/platform';
import { SecretsRepository } from '@rackseal/secrets';
import { DataSource } from 'typeorm';
import { DeliveriesRepository } from './deliveries.repository';
import { DeliveryError } from './delivery-errors';
import { isDeliveryState } from './delivery-state';

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
      throw new DeliveryError('delivery.invalid', `state must be one of pending, ready, acked, failed, cancelled, expired`);
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
