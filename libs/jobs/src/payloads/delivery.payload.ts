import { Equals, IsInt, IsUUID, Max, Min } from 'class-validator';

/** Seal one delivery for its machine and put it in the machine's mailbox (libs/deliveries). */
export class DeliveryDeliverPayload {
  @IsUUID()
  deliveryId: string;

  /** The delivery's round: 1, and one more for each operator retry (each round is its own job). */
  @IsInt()
  @Min(1)
  @Max(1_000_000)
  generation: number;
}

/** The reconciler's periodic run (one job scheduler for every worker). */
export class DeliveryReconcilePayload {
  @Equals('schedule')
  trigger: 'schedule';
}
