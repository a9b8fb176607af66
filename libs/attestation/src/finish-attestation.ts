import { AuditLog } from '@rackseal/audit';
import type { SecretBytes } from '@rackseal/config';
import { openEnvelope, sealEnvelope } from '@rackseal/envelope';
import { type Machine, MachinesRepository } from '@rackseal/machines';
import { ATTESTATION_LIMITS, type FinishAttestationRequest, type FinishAttestationResponse } from '@rackseal/node-api-contracts';
import { deriveNodeCredential, verifyActivationProof } from '@rackseal/node-identity';
import { evaluatePcrPolicy, type PcrPolicy } from '@rackseal/pcr-policy';
import { IMA_PCR } from '@rackseal/ima';
import { Clock, RandomSource } from '@rackseal/platform';
import type { TPMS_CLOCK_INFO } from '@rackseal/tpm2';
import type { EntityManager } from 'typeorm';
import { AttestationError, type AttestationErrorCode } from './attestation-errors';
import type { AttestationServiceOptions } from './attestation-options';
import { AttestationRepository, nodeCredentialContext, type Registration, registrationSecretContext } from './attestation.repository';
import type { AuditContext } from './audit-context';
import { checkEventLog } from './event-log-check';
import { PcrPolicySource } from './pcr-policy-source';
import { checkQuote } from './quote-check';
import type { RuntimeCheck, RuntimeCheckInput } from './runtime-integrity-check';
import { decodeField, REGISTRATION_ID_PATTERN } from './wire-input';

/** The longest reason a state transition keeps (the machine's history column). */
const MAX_TRANSITION_REASON = 1000;

/**
 * `POST /node/v1/attestations/:id/finish` inside its transaction (issue 12 items 1-3): consumes the
 * registration once, then checks the activation proof, the quote, the PCR values and the event log,
 * and lets the group's PCR policy decide between attested (a new node credential) and quarantined.
 */
export class FinishAttestation {
  constructor(
    private readonly audit: AuditLog,
    private readonly machines: MachinesRepository,
    private readonly registrations: AttestationRepository,
    private readonly policies: PcrPolicySource,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly options: AttestationServiceOptions,
  ) {}

  async run(m: EntityManager, registrationId: string, request: FinishAttestationRequest, ctx: AuditContext): Promise<FinishAttestationResponse> {
    if (!REGISTRATION_ID_PATTERN.test(registrationId)) {
      throw new AttestationError('attestation.unknown-registration', 'no such registration');
    }
    ctx.details.registrationId = registrationId;
    const proof = decodeField('activationProof', request.activationProof, ATTESTATION_LIMITS.activationProofBytes, ATTESTATION_LIMITS.activationProofBytes);
    const attest = decodeField('quote.attest', request.quote?.attest, ATTESTATION_LIMITS.attestBytes);
    const signature = decodeField('quote.signature', request.quote?.signature, ATTESTATION_LIMITS.signatureBytes);
    const pcrValues = decodeField('pcrValues', request.pcrValues, ATTESTATION_LIMITS.pcrValuesBytes);
    const eventLog = request.eventLog === undefined ? undefined : decodeField('eventLog', request.eventLog, ATTESTATION_LIMITS.eventLogBytes);

    const now = this.clock.now();
    const registration = await this.registrations.consume(registrationId, now, m);
    if (registration === undefined) {
      const known = await this.registrations.findById(registrationId, m);
      if (known === undefined) {
        throw new AttestationError('attestation.unknown-registration', `no registration ${registrationId}`);
      }
      ctx.actor = `machine:${known.ekPubHash}`;
      throw new AttestationError('attestation.registration-finished', `registration ${registrationId} was already finished (${known.outcome ?? 'open'}); start a new one`);
    }
    ctx.actor = `machine:${registration.ekPubHash}`;
    // A replayed or unknown registration (above) says nothing about the machine; from here on the
    // refusal is this machine's attestation failing, kept on its record.
    ctx.machineId = registration.machineId;
    ctx.registrationId = registration.id;
    const refuse = async (code: AttestationErrorCode, message: string, lines: readonly string[] = []): Promise<never> => {
      await this.registrations.end(registration.id, { outcome: 'refused', failureCode: code, failureReason: message }, m);
      throw new AttestationError(code, message, lines);
    };

    const machine = await this.machines.findById(registration.machineId, m);
    ctx.subject = `machine:${machine!.serial}`;
    if (machine!.state === 'revoked') {
      return refuse('attestation.machine-revoked', `machine ${machine!.serial} was revoked during its attestation`);
    }
    if (now.getTime() > registration.deadline.getTime()) {
      return refuse('attestation.registration-expired', `registration ${registration.id} expired at ${registration.deadline.toISOString()}; start a new one`);
    }

    const secret = openEnvelope(this.options.masterKey, registrationSecretContext(registration.id), registration.secretSealed);
    try {
      if (!verifyActivationProof(secret, registration.id, registration.nonce, proof)) {
        return await refuse('attestation.activation-failed', 'the activation proof is not the one of this registration: the credential was not activated by the TPM holding this EK and AK');
      }
      const quoted = checkQuote(registration, attest, signature, pcrValues);
      if (!quoted.ok) {
        return await refuse(quoted.code, quoted.message);
      }
      const values = quoted.values;
      const measured = Object.fromEntries([...values].map(([pcr, value]) => [String(pcr), value.toString('hex')]));
      if (eventLog !== undefined) {
        // PCR 10 is the OS's (IMA's): a firmware event log never explains it, the IMA list does (below).
        const lines = checkEventLog(eventLog, registration.pcrBank, new Map([...values].filter(([pcr]) => pcr !== IMA_PCR)));
        if (lines.length > 0) {
          return await refuse('attestation.event-log-mismatch', 'the event log does not replay to the quoted PCR values', lines);
        }
      }
      return await this.judge(m, registration, machine!, secret, { values, clockInfo: quoted.clockInfo, measured, eventLog, ima: request.ima }, now, ctx);
    } finally {
      secret.reveal().fill(0);
    }
  }

  /**
   * The group's PCR policy decides: attested (match, or drift in a warn group) or quarantined; then,
   * when the group has a runtime policy, the IMA entries (RuntimeIntegrityCheck): a failure in an
   * enforce policy quarantines, in a warn policy it is recorded.
   */
  private async judge(m: EntityManager, registration: Registration, machine: Machine, secret: SecretBytes, quote: QuotedEvidence, now: Date, ctx: AuditContext): Promise<FinishAttestationResponse> {
    const { values, measured, eventLog } = quote;
    const actor = ctx.actor;
    // Kept whatever the policy decides: a quarantined canary's values are what `policy promote` reads.
    await this.registrations.recordEvidence(machine.id, { registrationId: registration.id, at: now, bank: registration.pcrBank, values: measured, ...(eventLog === undefined ? {} : { eventLog }) }, m);
    const policy: PcrPolicy | undefined = await this.policies.policyFor(machine.group, m);
    if (policy === undefined) {
      return this.quarantine(m, registration, machine, now, 'attestation.no-policy', `group ${machine.group ?? '(none)'} has no PCR policy: the measured values are recorded for promotion`, [], measured);
    }
    const verdict = evaluatePcrPolicy(policy, { bank: registration.pcrBank, values }, eventLog === undefined ? {} : { eventLog });
    if (verdict.decision === 'mismatch' && verdict.enforced) {
      return this.quarantine(m, registration, machine, now, 'attestation.policy-mismatch', `the PCR values match no allowed set of group ${machine.group ?? '(none)'}`, verdict.summary, measured);
    }

    const runtime = await this.checkRuntime(m, registration, { registration, machine, values, clockInfo: quote.clockInfo, ima: quote.ima, now });
    if (runtime.kind === 'judged') {
      ctx.details.ima = runtime.audit;
      if (!runtime.pass && runtime.mode === 'enforce') {
        return this.quarantine(m, registration, machine, now, 'attestation.runtime-policy-violation', `the IMA measurement list fails the runtime policy of group ${machine.group ?? '(none)'}`, runtime.lines, measured);
      }
    }
    const runtimeDrift = runtime.kind === 'judged' && !runtime.pass;

    const credential = deriveNodeCredential(secret, { registrationId: registration.id, ekPubHash: registration.ekPubHash, akName: registration.akName });
    const keySealed = sealEnvelope(this.options.masterKey, nodeCredentialContext(credential.credentialId), credential.key, (n) => this.random.bytes(n));
    credential.key.reveal().fill(0);
    await this.registrations.replaceCredential({ credentialId: credential.credentialId, machineId: machine.id, registrationId: registration.id, keySealed, createdAt: now }, m);
    const drift = verdict.decision === 'mismatch';
    const explanation = [...(drift ? verdict.summary : []), ...(runtimeDrift ? runtime.lines : [])];
    await this.registrations.end(registration.id, { outcome: 'attested', ...(explanation.length > 0 ? { explanation } : {}), measured }, m);
    await this.machines.recordAttested(machine.id, now, m);
    await this.machines.transition(
      {
        machineId: machine.id,
        from: 'attesting',
        to: 'attested',
        reason: truncate(
          [
            drift ? `attested with drift (warn mode): ${verdict.summary.join('; ')}` : `attested: PCR values match set ${verdict.matchedSet!}`,
            ...(runtimeDrift ? [`runtime policy failures recorded (warn mode): ${runtime.lines.join('; ')}`] : []),
          ].join('; '),
        ),
        actor,
      },
      now,
      m,
    );
    await this.options.attestedHook?.attested(machine, now, m);
    await this.audit.append(
      {
        actor,
        action: 'attestation.succeeded',
        subject: ctx.subject,
        outcome: 'success',
        details: {
          registrationId: registration.id,
          credentialId: credential.credentialId,
          decision: verdict.decision,
          ...(verdict.matchedSet === undefined ? {} : { matchedSet: verdict.matchedSet }),
          ...(drift ? { drift: [...verdict.summary] } : {}),
          ...(runtime.kind === 'judged' ? { ima: runtime.audit } : {}),
        },
      },
      m,
    );
    return {
      machineId: machine.id,
      state: 'attested',
      credentialId: credential.credentialId,
      attestedAt: now.toISOString(),
      policy: { decision: verdict.decision, ...(verdict.matchedSet === undefined ? {} : { matchedSet: verdict.matchedSet }), summary: [...verdict.summary] },
      ...(runtime.kind === 'judged' ? { ima: runtime.wire } : {}),
    };
  }

  /** The runtime half (RuntimeIntegrityCheck); its refusals (ima-restart, ima-pcr-missing) recorded on the registration like the others. */
  private async checkRuntime(m: EntityManager, registration: Registration, input: RuntimeCheckInput): Promise<RuntimeCheck> {
    if (this.options.runtime === undefined) {
      return { kind: 'none' };
    }
    try {
      return await this.options.runtime.check(m, input);
    } catch (error) {
      if (error instanceof AttestationError) {
        await this.registrations.end(registration.id, { outcome: 'refused', failureCode: error.code, failureReason: error.message }, m);
      }
      throw error;
    }
  }

  /** A policy decision against the machine: quarantined with its explanation, recorded, refused. */
  private async quarantine(
    m: EntityManager,
    registration: Registration,
    machine: Machine,
    now: Date,
    code: AttestationErrorCode,
    message: string,
    lines: readonly string[],
    measured: Record<string, string>,
  ): Promise<never> {
    await this.registrations.end(registration.id, { outcome: 'quarantined', failureCode: code, failureReason: message, explanation: lines, measured }, m);
    await this.machines.transition(
      { machineId: machine.id, from: 'attesting', to: 'quarantined', reason: truncate([message, ...lines].join('; ')), actor: `machine:${registration.ekPubHash}` },
      now,
      m,
    );
    throw new AttestationError(code, message, lines);
  }
}

/** What the verified quote says, for the policies to judge. */
interface QuotedEvidence {
  readonly values: Map<number, Buffer>;
  readonly clockInfo: TPMS_CLOCK_INFO;
  readonly measured: Record<string, string>;
  readonly eventLog: Buffer | undefined;
  readonly ima: FinishAttestationRequest['ima'];
}

function truncate(reason: string): string {
  return reason.length <= MAX_TRANSITION_REASON ? reason : `${reason.slice(0, MAX_TRANSITION_REASON - 1)}…`;
}
