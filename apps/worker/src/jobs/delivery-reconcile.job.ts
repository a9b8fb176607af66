import { Injectable } from '@nestjs/common';
import { DeliveryReconciler, type ReconcileReport } from '@rackseal/deliveries';
import { JobHandler } from '@rackseal/jobs';

/** The reconciler's scheduled run (libs/deliveries DeliveryReconciler). */
@Injectable()
export class DeliveryReconcileJob {
  constructor(private readonly reconciler: DeliveryReconciler) {}

  @JobHandler('delivery.reconcile')
  run(): Promise<ReconcileReport> {
    return this.reconciler.run();
  }
}
