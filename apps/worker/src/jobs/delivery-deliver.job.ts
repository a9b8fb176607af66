import { Injectable } from '@nestjs/common';
import { type DeliveryDeliverPayload, JOB_CATALOG, JobHandler } from '@rackseal/jobs';
import { type DeliverOutcome, DeliveryGaveUpError, DeliveryProcessor } from '@rackseal/deliveries';
import { UnrecoverableError } from 'bullmq';
import type { JobContext } from '../handler-registry';

/**
 * Seals one delivery round and puts it in its machine's mailbox (libs/deliveries DeliveryProcessor:
 * safe to run twice or at once). A failure is thrown for BullMQ's exponential backoff; the last
 * attempt, or a failure no attempt can fix, leaves the delivery `failed` and the job is not retried.
 */
@Injectable()
export class DeliveryDeliverJob {
  constructor(private readonly processor: DeliveryProcessor) {}

  @JobHandler('delivery.deliver')
  async run(payload: DeliveryDeliverPayload, context: JobContext): Promise<DeliverOutcome> {
    try {
      return await this.processor.deliver(payload.deliveryId, payload.generation, context.attempt >= JOB_CATALOG['delivery.deliver'].attempts);
    } catch (error) {
      if (error instanceof DeliveryGaveUpError) {
        throw new UnrecoverableError(error.message);
      }
      throw error;
    }
  }
}
