import { AuditBudget, AuditLog, SuppressedAuditRecords } from '@rackseal/audit';
import { MachinesRepository } from '@rackseal/machines';
import type { FinishAttestationRequest, FinishAttestationResponse, StartAttestationRequest, StartAttestationResponse } from '@rackseal/node-api-contracts';
import { Clock, RandomSource } from '@rackseal/platform';
import type { DataSource, EntityManager } from 'typeorm';
import { AttestationError } from './attestation-errors';
import type { AttestationServiceOptions } from './attestation-options';
import { AttestationRepository } from './attestation.repository';
import { ANONYMOUS_NODE, type AuditContext } from './audit-context';
import { FinishAttestation } from './finish-attestation';
import { PcrPolicySource } from './pcr-policy-source';
import { StartAttestation } from './start-attestation';
import { canonicalRegistrationId } from './wire-input';

/**
 * Refusals that identify no machine of the inventory (an unknown EK, a malformed body, an unknown
 * or replayed registration) are audited at most this often per process, per code: anyone who
 * reaches the node API can send them for free (docs/decisions.md, "Node API and operator API after
 * the intruder pass"). A refusal of a known machine's attestation is always audited.
 */
export const UNIDENTIFIED_REFUSAL_AUDIT_LIMITS = { perWindow: 20, perSource: 5, windowMs: 60_000 } as const;

/** The audit action of every refused call (an action, not an error code). */
const REFUSED = { action: 'attestation.refused' } as const;

/** Where an attestation call came from: the client address, for the per-source audit bound. */
export interface AttestationCaller {
  readonly source?: string;
}

/**
 * The enrollment protocol's server side (issue 12 items 1-2, docs/architecture.md §4.3): `start`
 * (start-attestation.ts) checks everything a start can check and answers a MakeCredential
 * challenge, a nonce and the PCR selection; `finish` (finish-attestation.ts) consumes the
 * registration once and checks the activation proof, the quote, the PCR values, the event log and
 * the group's PCR policy. Each call is one transaction: its decision, the machine's transition, the
 * rows and the audit record commit together. Every refusal is an AttestationError with a stable
 * code, audited as `attestation.refused`; nothing is issued. All state is in PostgreSQL, so any
 * control-plane replica serves either call.
 */
export class AttestationService {
  private readonly starter: StartAttestation;
  private readonly finisher: FinishAttestation;
  private readonly unidentifiedBudget: AuditBudget;

  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: AuditLog,
    private readonly machines: MachinesRepository,
    registrations: AttestationRepository,
    policies: PcrPolicySource,
    private readonly clock: Clock,
    random: RandomSource,
    options: AttestationServiceOptions,
    suppressed: SuppressedAuditRecords = new SuppressedAuditRecords(),
  ) {
    this.unidentifiedBudget = new AuditBudget(UNIDENTIFIED_REFUSAL_AUDIT_LIMITS, (code) => suppressed.add(REFUSED.action, code));
    this.starter = new StartAttestation(audit, machines, registrations, policies, clock, random, options);
    this.finisher = new FinishAttestation(audit, machines, registrations, policies, clock, random, options);
  }

  async start(request: StartAttestationRequest, caller: AttestationCaller = {}): Promise<StartAttestationResponse> {
    const ctx: AuditContext = { actor: ANONYMOUS_NODE, subject: '', details: {} };
    return this.decide('start', ctx, caller, (m) => this.starter.run(m, request, ctx));
  }

  async finish(registrationId: string, request: FinishAttestationRequest, caller: AttestationCaller = {}): Promise<FinishAttestationResponse> {
    // The id comes from the URL: named in the record only once it has the shape of one the server
    // issued, in its canonical lower case (UUIDs compare case-insensitively, RFC 9562 §4).
    const canonical = canonicalRegistrationId(registrationId);
    const ctx: AuditContext = { actor: ANONYMOUS_NODE, subject: canonical === undefined ? '' : `registration:${canonical}`, details: {} };
    return this.decide('finish', ctx, caller, (m) => this.finisher.run(m, canonical ?? registrationId, request, ctx));
  }

  /**
   * Runs one call in a transaction. A refusal commits what the call recorded before it (a consumed
   * registration, a quarantine) plus its audit record, and is thrown after the commit. A refusal
   * that named no machine is audited within the budget (the record then carries how many of its
   * code were left out before it); the refusal itself is answered either way.
   */
  private async decide<T>(step: 'start' | 'finish', ctx: AuditContext, caller: AttestationCaller, work: (m: EntityManager) => Promise<T>): Promise<T> {
    const result = await this.dataSource.transaction(async (m): Promise<{ ok: T } | { refused: AttestationError }> => {
      try {
        return { ok: await work(m) };
      } catch (error) {
        if (!(error instanceof AttestationError)) {
          throw error;
        }
        const take = ctx.machineId === undefined ? this.unidentifiedBudget.take(error.code, this.clock.now().getTime(), caller.source) : { suppressed: 0 };
        if (take === undefined) {
          return { refused: error };
        }
        await this.audit.append(
          {
            actor: ctx.actor,
            action: REFUSED.action,
            subject: ctx.subject,
            outcome: 'refused',
            details: {
              step,
              code: error.code,
              reason: error.message,
              ...(error.lines.length > 0 ? { explanation: [...error.lines] } : {}),
              ...ctx.details,
              ...(take.suppressed > 0 ? { suppressed: take.suppressed } : {}),
            },
          },
          m,
        );
        if (ctx.machineId !== undefined) {
          await this.machines.recordFailure(
            ctx.machineId,
            { at: this.clock.now(), code: error.code, reason: error.message, explanation: [...error.lines], ...(ctx.registrationId === undefined ? {} : { registrationId: ctx.registrationId }) },
            m,
          );
        }
        return { refused: error };
      }
    });
    if ('refused' in result) {
      throw result.refused;
    }
    return result.ok;
  }
}
