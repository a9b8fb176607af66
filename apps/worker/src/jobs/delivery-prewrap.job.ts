import { Injectable } from '@nestjs/common';
import { type DeliveryDeliverPayload, JOB_CATALOG, JobHandler } from '@rackseal/jobs';
import { DeliveryGaveUpError, PrewrapProcessor, type PrewrapOutcome } from '@rackseal/deliveries';
import { UnrecoverableError } from 'bullmq';
import type { JobContext } from '../handler-registry';

/**
 * Seals one pre-wrap round (issue 14 item 6): a disk key for a machine not attested yet, to its
 * inventory EK (libs/deliveries PrewrapProcessor: safe to run twice or at once). Retried like
 * `delivery.deliver`; the last attempt, or a failure no attempt can fix, leaves it `failed`.
 */
@Injectable()
export class DeliveryPrewrapJob {
  constructor(private readonly processor: PrewrapProcessor) {}

  @JobHandler('delivery.prewrap')
  async run(payload: DeliveryDeliverPayload, context: JobContext): Promise<PrewrapOutcome> {
    try {
      return await this.processor.prewrap(payload.deliveryId, payload.generation, context.attempt >= JOB_CATALOG['delivery.prewrap'].attempts);
    } catch (error) {
      if (error instanceof DeliveryGaveUpError) {
        throw new UnrecoverableError(error.message);
      }
      throw error;
    }
  }
}
