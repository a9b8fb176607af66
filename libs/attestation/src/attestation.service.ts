import { AuditLog } from '@rackseal/audit';
import type { SecretBytes } from '@rackseal/config';
import { certificateEkPubHash, EkCertificateError, readCertificate, type ReadCertificate, type TrustStore, verifyEkChain } from '@rackseal/ek-trust';
import { openEnvelope, sealEnvelope } from '@rackseal/envelope';
import { type Machine, MachinesRepository } from '@rackseal/machines';
import {
  ATTESTATION_LIMITS,
  type FinishAttestationRequest,
  type FinishAttestationResponse,
  type StartAttestationRequest,
  type StartAttestationResponse,
} from '@rackseal/node-api-contracts';
import { deriveNodeCredential, verifyActivationProof } from '@rackseal/node-identity';
import { evaluatePcrPolicy, type PcrPolicy } from '@rackseal/pcr-policy';
import { Clock, RandomSource } from '@rackseal/platform';
import {
  ekPubHash,
  ekPublicFromKey,
  hashAlgorithmByBank,
  isHashAlgorithm,
  makeCredential,
  marshalTpmtPublic,
  objectName,
  type ParsedPublic,
  type TPML_PCR_SELECTION,
  type TPMT_PUBLIC,
  TpmParseError,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
  verifyQuote,
} from '@rackseal/tpm2';
import type { DataSource, EntityManager } from 'typeorm';
import { akProblem } from './ak-check';
import { AttestationError, type AttestationErrorCode } from './attestation-errors';
import { AttestationRepository, nodeCredentialContext, type PreviousState, type Registration, registrationSecretContext } from './attestation.repository';
import { checkEventLog } from './event-log-check';
import { DEFAULT_PCR_SELECTION, PcrPolicySource } from './pcr-policy-source';
import { decodeField, REGISTRATION_ID_PATTERN } from './wire-input';

export interface AttestationServiceOptions {
  readonly masterKey: SecretBytes;
  /** EK_CERT_GRACE_DAYS. */
  readonly ekGraceDays: number;
  /** ATTESTATION_REGISTRATION_TTL_MS. */
  readonly registrationTtlMs: number;
  /** The enabled vendor CAs (libs/vendor-cas `loadTrustStore`: this library does not depend on it). */
  readonly loadTrustStore: (manager: EntityManager) => Promise<TrustStore>;
}

/** The credential secret TPM2_ActivateCredential releases: 32 random bytes (≤ the EK nameAlg's digest, Part 3 §12.6). */
const SECRET_BYTES = 32;

/** Who and what a refusal's audit record names, filled in as the call learns them. */
interface AuditContext {
  actor: string;
  subject: string;
  details: Record<string, string>;
  /** Once known: the machine whose record keeps the refusal as its last failure. */
  machineId?: string;
  registrationId?: string;
}

const ANONYMOUS = 'node:unidentified';
const MAX_TRANSITION_REASON = 1000;

/**
 * The enrollment protocol's server side (issue 12 items 1-2, docs/architecture.md §4.3): `start`
 * checks everything a start can check and answers a MakeCredential challenge, a nonce and the PCR
 * selection; `finish` consumes the registration once and checks the activation proof, the quote,
 * the PCR values, the event log and the group's PCR policy. Each call is one transaction: its
 * decision, the machine's transition, the rows and the audit record commit together. Every refusal
 * is an AttestationError with a stable code, audited as `attestation.refused`; nothing is issued.
 * All state is in PostgreSQL, so any control-plane replica serves either call.
 */
export class AttestationService {
  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: AuditLog,
    private readonly machines: MachinesRepository,
    private readonly registrations: AttestationRepository,
    private readonly policies: PcrPolicySource,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly options: AttestationServiceOptions,
  ) {}

  async start(request: StartAttestationRequest): Promise<StartAttestationResponse> {
    const ctx: AuditContext = { actor: ANONYMOUS, subject: '', details: {} };
    return this.decide('start', ctx, (m) => this.startIn(m, request, ctx));
  }

  async finish(registrationId: string, request: FinishAttestationRequest): Promise<FinishAttestationResponse> {
    // The id comes from the URL: named in the record only once it has the shape of one the server issued.
    const ctx: AuditContext = { actor: ANONYMOUS, subject: REGISTRATION_ID_PATTERN.test(registrationId) ? `registration:${registrationId}` : '', details: {} };
    return this.decide('finish', ctx, (m) => this.finishIn(m, registrationId, request, ctx));
  }

  /**
   * Runs one call in a transaction. A refusal commits what the call recorded before it (a consumed
   * registration, a quarantine) plus its audit record, and is thrown after the commit.
   */
  private async decide<T>(step: 'start' | 'finish', ctx: AuditContext, work: (m: EntityManager) => Promise<T>): Promise<T> {
    const result = await this.dataSource.transaction(async (m): Promise<{ ok: T } | { refused: AttestationError }> => {
      try {
        return { ok: await work(m) };
      } catch (error) {
        if (!(error instanceof AttestationError)) {
          throw error;
        }
        await this.audit.append(
          {
            actor: ctx.actor,
            action: 'attestation.refused',
            subject: ctx.subject,
            outcome: 'refused',
            details: { step, code: error.code, reason: error.message, ...(error.lines.length > 0 ? { explanation: [...error.lines] } : {}), ...ctx.details },
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

  // ── start ─────────────────────────────────────────────────────────────────────────────────────

  private async startIn(m: EntityManager, request: StartAttestationRequest, ctx: AuditContext): Promise<StartAttestationResponse> {
    const now = this.clock.now();
    const certDer = request.ekCertificate === undefined ? undefined : decodeField('ekCertificate', request.ekCertificate, ATTESTATION_LIMITS.certificateBytes);
    const intermediates = (request.ekIntermediates ?? []).map((value, i) => decodeField(`ekIntermediates[${i}]`, value, ATTESTATION_LIMITS.certificateBytes));
    if (intermediates.length > ATTESTATION_LIMITS.intermediates) {
      throw new AttestationError('attestation.malformed', `at most ${ATTESTATION_LIMITS.intermediates} ekIntermediates`);
    }
    const ekPublicBytes = request.ekPublic === undefined ? undefined : decodeField('ekPublic', request.ekPublic, ATTESTATION_LIMITS.publicAreaBytes);
    if (certDer === undefined && ekPublicBytes === undefined) {
      throw new AttestationError('attestation.malformed', 'give ekCertificate, ekPublic, or both');
    }
    const akPublic = parsePublic('akPublic', decodeField('akPublic', request.akPublic, ATTESTATION_LIMITS.publicAreaBytes));

    // The EK: its identity (ekPubHash) from the certificate or the public area; both given must agree.
    const cert = certDer === undefined ? undefined : readEkCertificate(certDer);
    const ekFromTpm = ekPublicBytes === undefined ? undefined : parsePublic('ekPublic', ekPublicBytes);
    const certHash = cert === undefined ? undefined : certificateEkPubHash(cert.certificate);
    const tpmHash = ekFromTpm === undefined ? undefined : publicHash(ekFromTpm);
    const hash = (certHash ?? tpmHash)!;
    ctx.actor = `machine:${hash}`;
    ctx.details.ekPubHash = hash;
    if (certHash !== undefined && tpmHash !== undefined && certHash !== tpmHash) {
      throw new AttestationError('attestation.ek-mismatch', `the EK public (ekPubHash ${tpmHash}) is not the key of the EK certificate (ekPubHash ${certHash})`);
    }

    const machine = await this.machines.findByEkPubHash(hash, m);
    if (machine === undefined) {
      throw new AttestationError('attestation.unknown-ek', `no machine of the inventory has the EK ${hash}`);
    }
    ctx.subject = `machine:${machine.serial}`;
    ctx.machineId = machine.id;
    if (machine.state === 'revoked') {
      throw new AttestationError('attestation.machine-revoked', `machine ${machine.serial} is revoked; a revoked machine never attests again (import it anew)`);
    }

    if (cert !== undefined) {
      const store = await this.options.loadTrustStore(m);
      const chain = verifyEkChain(cert, { store, extraIntermediates: intermediates, now, ekGraceDays: this.options.ekGraceDays });
      if (!chain.ok) {
        ctx.details.chainFailure = chain.reason;
        throw new AttestationError('attestation.ek-untrusted', `the EK certificate does not chain to an enabled vendor CA (${chain.reason}): ${chain.message}`);
      }
    } else if (machine.ekCertFingerprint !== null) {
      // Otherwise an EK whose vendor CA the operator disabled would attest by leaving its certificate out.
      throw new AttestationError('attestation.ek-untrusted', `machine ${machine.serial} was imported with an EK certificate: send it (ekCertificate)`);
    }

    const problem = akProblem(akPublic);
    if (problem !== undefined) {
      throw new AttestationError('attestation.ak-rejected', problem);
    }

    const ekPublic = ekFromTpm ?? ekPublicFromCertificate(cert!);
    const policy = await this.policies.policyFor(machine.group);
    const selection = policy === undefined ? DEFAULT_PCR_SELECTION : { bank: policy.bank, pcrs: policy.pcrs };

    // Everything that can refuse comes before the first write: a refusal commits only its audit record.
    const id = this.random.uuid();
    const akName = objectName(akPublic);
    const nonce = this.random.bytes(ATTESTATION_LIMITS.nonceBytes);
    const secret = this.random.bytes(SECRET_BYTES);
    let challenge;
    try {
      challenge = makeCredential(ekPublic, akName, secret, { random: (n) => this.random.bytes(n) });
    } catch (error) {
      secret.fill(0);
      throw new AttestationError('attestation.malformed', `no credential can be made for this EK: ${(error as Error).message}`);
    }
    const secretSealed = sealEnvelope(this.options.masterKey, registrationSecretContext(id), secret, (n) => this.random.bytes(n));
    secret.fill(0);
    const previousState = await this.enterAttesting(machine, now, m);
    const deadline = new Date(now.getTime() + this.options.registrationTtlMs);
    await this.registrations.insert(
      {
        id,
        machineId: machine.id,
        previousState,
        ekPubHash: hash,
        ekPublic: marshalTpmtPublic(ekPublic),
        akPublic: akPublic.raw,
        akName,
        secretSealed,
        nonce,
        pcrBank: selection.bank,
        pcrs: [...selection.pcrs],
        createdAt: now,
        deadline,
      },
      m,
    );
    await this.audit.append(
      {
        actor: ctx.actor,
        action: 'attestation.started',
        subject: ctx.subject,
        outcome: 'success',
        details: { registrationId: id, ekPubHash: hash, akName: akName.toString('hex'), selection: `${selection.bank}:${selection.pcrs.join(',')}`, deadline: deadline.toISOString() },
      },
      m,
    );
    return {
      registrationId: id,
      credentialBlob: challenge.credentialBlob.toString('base64'),
      encryptedSecret: challenge.encryptedSecret.toString('base64'),
      nonce: nonce.toString('base64'),
      pcrSelection: { bank: selection.bank, pcrs: [...selection.pcrs] },
      deadline: deadline.toISOString(),
    };
  }

  /**
   * Moves the machine to `attesting` and answers the state a refusal would return it to. A machine
   * already `attesting` (an earlier start not finished, or a finish refused for a crypto failure)
   * starts again: the newest registration wins and the older open ones end `superseded`.
   */
  private async enterAttesting(machine: Machine, now: Date, m: EntityManager): Promise<PreviousState> {
    const superseded = await this.registrations.supersedeOpen(machine.id, now, m);
    if (machine.state === 'attesting') {
      return superseded ?? (await this.registrations.latestPreviousState(machine.id, m)) ?? 'imported';
    }
    const from = machine.state as PreviousState;
    await this.machines.transition({ machineId: machine.id, from, to: 'attesting', reason: 'attestation started', actor: `machine:${machine.ekPubHash}` }, now, m);
    return from;
  }

  // ── finish ────────────────────────────────────────────────────────────────────────────────────

  private async finishIn(m: EntityManager, registrationId: string, request: FinishAttestationRequest, ctx: AuditContext): Promise<FinishAttestationResponse> {
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
      const quoted = this.verifyQuote(registration, attest, signature, pcrValues);
      if (!quoted.ok) {
        return await refuse(quoted.code, quoted.message);
      }
      const values = quoted.values;
      const measured = Object.fromEntries([...values].map(([pcr, value]) => [String(pcr), value.toString('hex')]));
      if (eventLog !== undefined) {
        const lines = checkEventLog(eventLog, registration.pcrBank, values);
        if (lines.length > 0) {
          return await refuse('attestation.event-log-mismatch', 'the event log does not replay to the quoted PCR values', lines);
        }
      }
      return await this.judge(m, registration, machine!, secret, values, measured, eventLog, now, ctx);
    } finally {
      secret.reveal().fill(0);
    }
  }

  private verifyQuote(
    registration: Registration,
    attest: Buffer,
    signature: Buffer,
    pcrValues: Buffer,
  ): { ok: true; values: Map<number, Buffer> } | { ok: false; code: AttestationErrorCode; message: string } {
    const bank = hashAlgorithmByBank(registration.pcrBank);
    const selection: TPML_PCR_SELECTION = [{ hash: bank.alg, pcrs: registration.pcrs, sizeofSelect: 3 }];
    if (pcrValues.length % bank.size !== 0) {
      return { ok: false, code: 'attestation.pcr-values-mismatch', message: `pcrValues is ${pcrValues.length} bytes, not a whole number of ${registration.pcrBank} digests` };
    }
    // Split by digest size, not by the expected selection: a narrowed quote is refused as such by verifyQuote.
    const split = Array.from({ length: pcrValues.length / bank.size }, (_, i) => pcrValues.subarray(i * bank.size, (i + 1) * bank.size));
    const akPublic = unmarshalTpmtPublic(registration.akPublic);
    const result = verifyQuote({ akPublic, attest, signature, nonce: registration.nonce, pcrValues: split, selection });
    if (!result.ok) {
      const code: AttestationErrorCode =
        result.reason === 'nonce-mismatch'
          ? 'attestation.nonce-mismatch'
          : result.reason === 'selection-mismatch'
            ? 'attestation.selection-mismatch'
            : result.reason === 'pcr-digest-mismatch'
              ? 'attestation.pcr-values-mismatch'
              : 'attestation.quote-invalid';
      return { ok: false, code, message: `quote refused (${result.reason}): ${result.message}` };
    }
    return { ok: true, values: new Map(result.pcrs.map((p) => [p.index, p.value])) };
  }

  /** The group's PCR policy decides: attested (match, or drift in a warn group) or quarantined. */
  private async judge(
    m: EntityManager,
    registration: Registration,
    machine: Machine,
    secret: SecretBytes,
    values: Map<number, Buffer>,
    measured: Record<string, string>,
    eventLog: Buffer | undefined,
    now: Date,
    ctx: AuditContext,
  ): Promise<FinishAttestationResponse> {
    const actor = ctx.actor;
    // Kept whatever the policy decides: a quarantined canary's values are what `policy promote` reads.
    await this.registrations.recordEvidence(machine.id, { registrationId: registration.id, at: now, bank: registration.pcrBank, values: measured, ...(eventLog === undefined ? {} : { eventLog }) }, m);
    const policy: PcrPolicy | undefined = await this.policies.policyFor(machine.group);
    if (policy === undefined) {
      return this.quarantine(m, registration, machine, now, 'attestation.no-policy', `group ${machine.group ?? '(none)'} has no PCR policy: the measured values are recorded for promotion`, [], measured);
    }
    const verdict = evaluatePcrPolicy(policy, { bank: registration.pcrBank, values }, eventLog === undefined ? {} : { eventLog });
    if (verdict.decision === 'mismatch' && verdict.enforced) {
      return this.quarantine(m, registration, machine, now, 'attestation.policy-mismatch', `the PCR values match no allowed set of group ${machine.group ?? '(none)'}`, verdict.summary, measured);
    }

    const credential = deriveNodeCredential(secret, { registrationId: registration.id, ekPubHash: registration.ekPubHash, akName: registration.akName });
    const keySealed = sealEnvelope(this.options.masterKey, nodeCredentialContext(credential.credentialId), credential.key, (n) => this.random.bytes(n));
    credential.key.reveal().fill(0);
    await this.registrations.replaceCredential({ credentialId: credential.credentialId, machineId: machine.id, registrationId: registration.id, keySealed, createdAt: now }, m);
    const drift = verdict.decision === 'mismatch';
    await this.registrations.end(registration.id, { outcome: 'attested', ...(drift ? { explanation: verdict.summary } : {}), measured }, m);
    await this.machines.recordAttested(machine.id, now, m);
    await this.machines.transition(
      {
        machineId: machine.id,
        from: 'attesting',
        to: 'attested',
        reason: truncate(drift ? `attested with drift (warn mode): ${verdict.summary.join('; ')}` : `attested: PCR values match set ${verdict.matchedSet!}`),
        actor,
      },
      now,
      m,
    );
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
    };
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

function truncate(reason: string): string {
  return reason.length <= MAX_TRANSITION_REASON ? reason : `${reason.slice(0, MAX_TRANSITION_REASON - 1)}…`;
}

function parsePublic(field: string, bytes: Buffer): ParsedPublic {
  try {
    return unmarshalTpm2bPublic(bytes);
  } catch (error) {
    if (error instanceof TpmParseError) {
      throw new AttestationError('attestation.malformed', `${field} is not a TPM2B_PUBLIC: ${error.message}`);
    }
    throw error;
  }
}

function readEkCertificate(der: Buffer): ReadCertificate {
  try {
    return readCertificate(der);
  } catch (error) {
    if (error instanceof EkCertificateError) {
      throw new AttestationError('attestation.malformed', `ekCertificate cannot be read: ${error.message}`);
    }
    throw error;
  }
}

function publicHash(pub: TPMT_PUBLIC): string {
  if (!isHashAlgorithm(pub.nameAlg)) {
    throw new AttestationError('attestation.malformed', 'ekPublic names no hash algorithm this server implements');
  }
  try {
    return ekPubHash(pub);
  } catch (error) {
    throw new AttestationError('attestation.malformed', `ekPublic is not an RSA or ECC public key: ${(error as Error).message}`);
  }
}

function ekPublicFromCertificate(cert: ReadCertificate): TPMT_PUBLIC {
  try {
    return ekPublicFromKey(cert.certificate.publicKey);
  } catch (error) {
    throw new AttestationError('attestation.malformed', `no EK template for the certificate's key (send ekPublic): ${(error as Error).message}`);
  }
}
