import type { Provider } from '@nestjs/common';
import { AttestedMachineHook } from '@rackseal/attestation';
import { SecretVersionHook } from '@rackseal/secrets';
import { DeliveriesRepository } from './deliveries.repository';
import { Deliveries } from './deliveries';
import { DeliveryNotifications, RedisDeliveryNotifications } from './delivery-notifications';
import { DeliveryPlanner } from './delivery-planner';
import { DeliveryProcessor } from './delivery-processor';
import { DeliveryReconciler } from './delivery-reconciler';
import { EnvelopeSealer } from './envelope-sealer';
import { Mailbox } from './mailbox';
import { OutboxRelay } from './outbox-relay';
import { WrappingEnvelopeSealer } from './wrapping-envelope-sealer';

/**
 * The deliveries and what they need beside the shared modules: libs/machines' MachinesRepository,
 * libs/attestation's providers (MachineWrappingKeys) and libs/secrets' (the including module lists
 * them). DeliveryPlanner is bound as libs/secrets' SecretVersionHook and libs/attestation's
 * AttestedMachineHook, so a version or an attestation plans its deliveries in its transaction.
 * The sealer is the wrapping library's adapter (WrappingEnvelopeSealer, which needs libs/attestation's
 * PcrApprovals); `sealer` replaces it (the delivery suites' test sealer).
 */
export function deliveriesProviders(options: { sealer?: EnvelopeSealer } = {}): Provider[] {
  return [
    DeliveriesRepository,
    DeliveryPlanner,
    { provide: SecretVersionHook, useExisting: DeliveryPlanner },
    { provide: AttestedMachineHook, useExisting: DeliveryPlanner },
    { provide: DeliveryNotifications, useClass: RedisDeliveryNotifications },
    options.sealer === undefined ? { provide: EnvelopeSealer, useClass: WrappingEnvelopeSealer } : { provide: EnvelopeSealer, useValue: options.sealer },
    DeliveryProcessor,
    OutboxRelay,
    DeliveryReconciler,
    Mailbox,
    Deliveries,
  ];
}
