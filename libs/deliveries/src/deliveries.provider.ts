import type { Provider } from '@nestjs/common';
import { ApprovalEpochHook, AttestedMachineHook } from '@rackseal/attestation';
import { InventoryImportHook } from '@rackseal/inventory';
import { MachineRevocationFollowUp } from '@rackseal/machines';
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
import { PrewrapExport } from './prewrap-export';
import { PrewrapPlanner } from './prewrap-planner';
import { PrewrapProcessor } from './prewrap-processor';
import { RevokedMachineDeliveries } from './revoked-machine-deliveries';
import { SecretRotationSchedule } from './secret-rotation-schedule';
import { VersionRetirement } from './version-retirement';
import { WrappingEnvelopeSealer } from './wrapping-envelope-sealer';

/**
 * The deliveries and what they need beside the shared modules: libs/machines' MachinesRepository,
 * libs/attestation's providers (MachineWrappingKeys) and libs/secrets' (the including module lists
 * them). DeliveryPlanner is bound as libs/secrets' SecretVersionHook and libs/attestation's
 * AttestedMachineHook, so a version or an attestation plans its deliveries in its transaction, and
 * as libs/attestation's ApprovalEpochHook (an epoch bump re-wraps the group's pcr-sealed ones);
 * RevokedMachineDeliveries is libs/machines' MachineRevocationFollowUp (a revoke cancels and rotates);
 * PrewrapPlanner is libs/inventory's InventoryImportHook (an import plans its disk keys' pre-wraps).
 * The sealer is the wrapping library's adapter (WrappingEnvelopeSealer, which needs libs/attestation's
 * PcrApprovals); `sealer` replaces it (the delivery suites' test sealer).
 */
export function deliveriesProviders(options: { sealer?: EnvelopeSealer } = {}): Provider[] {
  return [
    DeliveriesRepository,
    DeliveryPlanner,
    PrewrapPlanner,
    { provide: InventoryImportHook, useExisting: PrewrapPlanner },
    PrewrapProcessor,
    PrewrapExport,
    { provide: SecretVersionHook, useExisting: DeliveryPlanner },
    { provide: AttestedMachineHook, useExisting: DeliveryPlanner },
    { provide: ApprovalEpochHook, useExisting: DeliveryPlanner },
    RevokedMachineDeliveries,
    { provide: MachineRevocationFollowUp, useExisting: RevokedMachineDeliveries },
    VersionRetirement,
    SecretRotationSchedule,
    { provide: DeliveryNotifications, useClass: RedisDeliveryNotifications },
    options.sealer === undefined ? { provide: EnvelopeSealer, useClass: WrappingEnvelopeSealer } : { provide: EnvelopeSealer, useValue: options.sealer },
    DeliveryProcessor,
    OutboxRelay,
    DeliveryReconciler,
    Mailbox,
    Deliveries,
  ];
}
