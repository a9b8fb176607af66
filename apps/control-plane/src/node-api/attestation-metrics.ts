import { Injectable } from '@nestjs/common';
import { AttestationError } from '@rackseal/attestation';
import { MetricsRegistry } from '@rackseal/metrics';
import type { Counter } from 'prom-client';

/** What became of one call of the enrollment protocol. */
export type AttestationOutcome = 'challenged' | 'attested' | 'refused' | 'error';

/**
 * rackseal_attestations_total{step, outcome, code}: every start and finish this process answered.
 * `code` is the refusal's `attestation.*` code (ATTESTATION_ERROR_CODES: a fixed set), empty for a
 * success and for an error that is no refusal (a database outage, answered 503). Requests refused by
 * validation before the service (400 request.invalid) are in the HTTP histogram only.
 */
@Injectable()
export class AttestationMetrics {
  private readonly calls: Counter<'step' | 'outcome' | 'code'>;

  constructor(metrics: MetricsRegistry) {
    this.calls = metrics.counter('rackseal_attestations_total', 'Attestation calls answered by this process, by step, outcome and refusal code.', ['step', 'outcome', 'code']);
  }

  /** Runs one call and counts how it ended; the result or error passes through unchanged. */
  async count<T>(step: 'start' | 'finish', call: () => Promise<T>): Promise<T> {
    try {
      const result = await call();
      this.calls.inc({ step, outcome: step === 'start' ? 'challenged' : 'attested', code: '' });
      return result;
    } catch (error) {
      const refused = error instanceof AttestationError;
      this.calls.inc({ step, outcome: refused ? 'refused' : 'error', code: refused ? error.code : '' });
      throw error;
    }
  }
}
