import { AuditLog } from '@rackseal/audit';
import { certificateEkPubHash, verifyEkChain } from '@rackseal/ek-trust';
import { sealEnvelope } from '@rackseal/envelope';
import { type Machine, MachinesRepository } from '@rackseal/machines';
import { ATTESTATION_LIMITS, type StartAttestationRequest, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { Clock, RandomSource } from '@rackseal/platform';
import { IMA_PCR } from '@rackseal/ima';
import { makeCredential, marshalTpmtPublic, objectName } from '@rackseal/tpm2';
import type { EntityManager } from 'typeorm';
import { akProblem } from './ak-check';
import { AttestationError } from './attestation-errors';
import type { AttestationServiceOptions } from './attestation-options';
import { AttestationRepository, type PreviousState, registrationSecretContext } from './attestation.repository';
import type { AuditContext } from './audit-context';
import { ekPublicFromCertificate, parsePublic, publicHash, readEkCertificate } from './ek-input';
import { DEFAULT_PCR_SELECTION, PcrPolicySource } from './pcr-policy-source';
import { decodeField } from './wire-input';

/** The credential secret TPM2_ActivateCredential releases: 32 random bytes (≤ the EK nameAlg's digest, Part 3 §12.6). */
const SECRET_BYTES = 32;

/**
 * `POST /node/v1/attestations` inside its transaction (issue 12 item 1): identifies the machine by
 * its EK, checks the EK chain and the AK, and answers a MakeCredential challenge to the EK for the
 * AK's Name, a fresh nonce and the PCR selection of the machine's group. Every check that can
 * refuse runs before the first write.
 */
export class StartAttestation {
  constructor(
    private readonly audit: AuditLog,
    private readonly machines: MachinesRepository,
    private readonly registrations: AttestationRepository,
    private readonly policies: PcrPolicySource,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly options: AttestationServiceOptions,
  ) {}

  async run(m: EntityManager, request: StartAttestationRequest, ctx: AuditContext): Promise<StartAttestationResponse> {
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
    const policy = await this.policies.policyFor(machine.group, m);
    const base = policy === undefined ? DEFAULT_PCR_SELECTION : { bank: policy.bank, pcrs: policy.pcrs };
    // A group with a runtime policy: PCR 10 is quoted too, and the IMA list is asked for from the machine's next entry.
    const ima = await this.options.runtime?.request(machine, m);
    const selection = ima === undefined || (base.pcrs as readonly number[]).includes(IMA_PCR) ? base : { bank: base.bank, pcrs: [...base.pcrs, IMA_PCR].sort((a, b) => a - b) };

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
        details: {
          registrationId: id,
          ekPubHash: hash,
          akName: akName.toString('hex'),
          selection: `${selection.bank}:${selection.pcrs.join(',')}`,
          deadline: deadline.toISOString(),
          ...(ima === undefined ? {} : { imaFromEntry: ima.fromEntry }),
        },
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
      ...(ima === undefined ? {} : { ima }),
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
}
