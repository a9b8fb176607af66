import type { CertifiedKey } from '@rackseal/api-contracts';
import { AuditLog } from '@rackseal/audit';
import { type Machine, MachineNotFoundError, type MachineRef, MachineRevocationHook, MachinesRepository } from '@rackseal/machines';
import { type CertifyKeyRequest, type CertifiedKeyResponse, KEY_CERTIFICATION_LIMITS, type KeyChallengeResponse } from '@rackseal/node-api-contracts';
import { Clock, RandomSource } from '@rackseal/platform';
import { type CertifyRefusalReason, objectName, type ParsedPublic, TpmParseError, unmarshalTpm2bPublic, unmarshalTpmsAttest, unmarshalTpmtPublic, verifyCertify } from '@rackseal/tpm2';
import type { DataSource, EntityManager } from 'typeorm';
import { AttestationError } from './attestation-errors';
import { AttestationRepository } from './attestation.repository';
import { certifiedKeyAlgorithm } from './certified-key-policy';
import { CertifiedKeysRepository } from './certified-keys.repository';
import { AttestedMachineHook } from './attested-machine-hook';
import { KeyError, type KeyErrorCode } from './key-errors';
import { decodeField } from './wire-input';

/** The machine a signed node request came from (the control plane's node request guard names it). */
export interface KeyCaller {
  readonly credentialId: string;
  readonly machine: Machine;
}

/** Which KeyError each refusal of libs/tpm2's verifyCertify is. */
const CERTIFY_REFUSALS: Readonly<Record<CertifyRefusalReason, KeyErrorCode>> = {
  malformed: 'key.malformed',
  'bad-magic': 'key.not-certify',
  'wrong-type': 'key.not-certify',
  // The AK on record is this library's own, checked at start: not the caller's fault, but its AK all the same.
  'ak-attributes': 'key.wrong-ak',
  'unsupported-scheme': 'key.wrong-ak',
  'scheme-mismatch': 'key.wrong-ak',
  'signature-invalid': 'key.wrong-ak',
  // verifyCertify is given the attestation's own extraData: the nonce is judged by the challenge store.
  'nonce-mismatch': 'key.nonce-unknown',
  'name-mismatch': 'key.name-mismatch',
};

/** A request field's bytes, a refusal naming it as `key.malformed`. */
function field(name: string, value: unknown, maxBytes: number): Buffer {
  try {
    return decodeField(name, value, maxBytes);
  } catch (error) {
    throw error instanceof AttestationError ? new KeyError('key.malformed', error.message) : error;
  }
}

function toResponse(key: CertifiedKey<Date>, retired?: CertifiedKey<Date>): CertifiedKeyResponse {
  return {
    keyId: key.id,
    name: key.name,
    algorithm: key.algorithm as CertifiedKeyResponse['algorithm'],
    certifiedAt: key.certifiedAt.toISOString(),
    ...(retired === undefined ? {} : { retiredKeyId: retired.id }),
  };
}

/**
 * Key certification (issue 13 item 1, docs/architecture.md §4.4). A machine asks for a challenge
 * (a single-use server nonce with a deadline), creates a decrypt key in its TPM, certifies it with
 * the AK of its current attestation over that nonce and sends the key's public area with the
 * certification. `certify` checks, in this order: the certification verifies under this machine's
 * current AK (the AK of the registration that produced its live node credential) and is a
 * TPM-made TPM_ST_ATTEST_CERTIFY; the certified Name is H(the public area sent); the nonce is a
 * challenge of this machine, not used before and not expired; the key is exactly a decrypt key
 * (certified-key-policy.ts). Each call is one transaction: the decision, the key it retires (a
 * machine has one live key: a new one rotates the old out) and the audit records (`key.certified`,
 * `key.retired`, or `key.refused` with the code) commit together; a refusal stores no key.
 * Also libs/machines' revocation hook: revoking a machine retires its key.
 */
export class KeyCertification extends MachineRevocationHook {
  constructor(
    private readonly dataSource: DataSource,
    private readonly audit: AuditLog,
    private readonly machines: MachinesRepository,
    private readonly credentials: AttestationRepository,
    private readonly keys: CertifiedKeysRepository,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly challengeTtlMs: number,
    // The deliveries a new key makes possible, planned in its transaction (libs/deliveries).
    private readonly attestedHook?: AttestedMachineHook,
  ) {
    super();
  }

  /** A fresh challenge for the caller; the machine's expired ones are deleted on the way. */
  async challenge(caller: KeyCaller): Promise<KeyChallengeResponse> {
    const now = this.clock.now();
    const nonce = this.random.bytes(KEY_CERTIFICATION_LIMITS.nonceBytes);
    const deadline = new Date(now.getTime() + this.challengeTtlMs);
    await this.dataSource.transaction(async (m) => {
      await this.keys.deleteExpiredChallenges(caller.machine.id, now, m);
      await this.keys.insertChallenge({ nonce, machineId: caller.machine.id, credentialId: caller.credentialId, createdAt: now, deadline }, m);
    });
    return { nonce: nonce.toString('base64'), deadline: deadline.toISOString() };
  }

  async certify(caller: KeyCaller, request: CertifyKeyRequest): Promise<CertifiedKeyResponse> {
    const details: Record<string, string> = {};
    const result = await this.dataSource.transaction(async (m): Promise<{ ok: CertifiedKeyResponse } | { refused: KeyError }> => {
      try {
        return { ok: await this.decide(caller, request, details, m) };
      } catch (error) {
        if (!(error instanceof KeyError)) {
          throw error;
        }
        await this.audit.append(
          {
            actor: `node-credential:${caller.credentialId}`,
            action: 'key.refused',
            subject: `machine:${caller.machine.id}`,
            outcome: 'refused',
            details: { serial: caller.machine.serial, code: error.code, reason: error.message, ...details },
          },
          m,
        );
        return { refused: error };
      }
    });
    if ('refused' in result) {
      throw result.refused;
    }
    return result.ok;
  }

  private async decide(caller: KeyCaller, request: CertifyKeyRequest, details: Record<string, string>, m: EntityManager): Promise<CertifiedKeyResponse> {
    const now = this.clock.now();
    const machine = caller.machine;
    const keyPublicBytes = field('keyPublic', request.keyPublic, KEY_CERTIFICATION_LIMITS.publicAreaBytes);
    const attestBytes = field('attest', request.attest, KEY_CERTIFICATION_LIMITS.attestBytes);
    const signature = field('signature', request.signature, KEY_CERTIFICATION_LIMITS.signatureBytes);
    let keyPublic: ParsedPublic;
    let extraData: Buffer;
    try {
      keyPublic = unmarshalTpm2bPublic(keyPublicBytes);
      extraData = unmarshalTpmsAttest(attestBytes).extraData;
    } catch (error) {
      if (error instanceof TpmParseError) {
        throw new KeyError('key.malformed', `keyPublic or attest is not the TPM structure named: ${error.message}`);
      }
      throw error;
    }
    details.keyName = objectName(keyPublic).toString('hex');

    // 1. Certified by this machine's current AK (and a TPM-made certify at all); 2. Name = H(public).
    const current = await this.credentials.currentAk(machine.id, m);
    if (current === undefined) {
      throw new KeyError('key.no-credential', `machine ${machine.serial} has no live node credential (revoked or rotated meanwhile): attest again`);
    }
    details.registrationId = current.registrationId;
    const verified = verifyCertify({ akPublic: unmarshalTpmtPublic(current.akPublic), attest: attestBytes, signature, nonce: extraData, certifiedPublic: keyPublic });
    if (!verified.ok) {
      const code = CERTIFY_REFUSALS[verified.reason];
      const message =
        code === 'key.wrong-ak'
          ? `the certification is not signed by the AK of machine ${machine.serial}'s current attestation (registration ${current.registrationId}): ${verified.message}`
          : verified.message;
      throw new KeyError(code, message);
    }

    // 3. The nonce: a challenge of this machine, taken once, before its deadline.
    const challenge = await this.keys.consumeChallenge(extraData, machine.id, now, m);
    if (challenge === undefined) {
      const found = extraData.length === KEY_CERTIFICATION_LIMITS.nonceBytes ? await this.keys.findChallenge(extraData, m) : undefined;
      if (found !== undefined && found.machineId === machine.id) {
        throw new KeyError('key.nonce-reused', `the challenge nonce was used at ${found.consumedAt!.toISOString()}: ask for a new challenge`);
      }
      if (found !== undefined) {
        // Said in the record, not to the caller: a machine learns nothing of another's challenges.
        details.challengeOf = `machine:${found.machineId}`;
      }
      throw new KeyError('key.nonce-unknown', 'the certification is not over a challenge of this machine (POST /node/v1/keys/challenges)');
    }
    if (challenge.deadline.getTime() <= now.getTime()) {
      throw new KeyError('key.nonce-expired', `the challenge expired at ${challenge.deadline.toISOString()}: ask for a new challenge`);
    }

    // 4. Exactly a decrypt key, strong enough.
    const algorithm = certifiedKeyAlgorithm(keyPublic);

    const live = await this.keys.liveKey(machine.id, m);
    if (live !== undefined && live.name === details.keyName) {
      // The same key again (an agent retrying after a lost answer): it stays, nothing rotates.
      await this.recordCertified(caller, live, undefined, true, m);
      return toResponse(live);
    }
    const retired = await this.keys.retireLive(machine.id, now, 'rotated', m);
    const key: CertifiedKey<Date> = {
      id: this.random.uuid(),
      machineId: machine.id,
      name: details.keyName,
      algorithm,
      publicArea: keyPublic.raw.toString('base64'),
      registrationId: current.registrationId,
      credentialId: current.credentialId,
      certifiedAt: now,
      retiredAt: null,
      retiredReason: null,
    };
    await this.keys.insertKey({ ...key, publicArea: keyPublic.raw }, m);
    if (retired !== undefined) {
      await this.recordRetired(`node-credential:${caller.credentialId}`, retired, 'rotated', m, key.id);
    }
    await this.recordCertified(caller, key, retired, false, m);
    await this.attestedHook?.keyCertified(machine, now, m);
    return toResponse(key, retired);
  }

  /** The caller's live key (GET /node/v1/keys/current): `key.none` when it has none. */
  async current(caller: KeyCaller): Promise<CertifiedKeyResponse> {
    const live = await this.keys.liveKey(caller.machine.id, this.dataSource.manager);
    if (live === undefined) {
      throw new KeyError('key.none', `machine ${caller.machine.serial} has no live certified key`);
    }
    return toResponse(live);
  }

  /** A machine's keys, live and retired, newest first (the operator's GET /v1/machines/:ref/keys). */
  async keysOf(ref: MachineRef): Promise<CertifiedKey<Date>[]> {
    const machine = await this.machines.findByRef(ref);
    if (machine === undefined) {
      throw new MachineNotFoundError('id' in ref ? ref.id : ref.serial);
    }
    return this.keys.keysOf(machine.id, this.dataSource.manager);
  }

  /** Revoke retires the machine's live key, audited, in the revocation's transaction. */
  async revoked(machineId: string, at: Date, manager: EntityManager): Promise<void> {
    const retired = await this.keys.retireLive(machineId, at, 'machine-revoked', manager);
    if (retired !== undefined) {
      await this.recordRetired('system:machine-revocation', retired, 'machine-revoked', manager);
    }
  }

  private async recordCertified(caller: KeyCaller, key: CertifiedKey<Date>, retired: CertifiedKey<Date> | undefined, unchanged: boolean, m: EntityManager): Promise<void> {
    await this.audit.append(
      {
        actor: `node-credential:${caller.credentialId}`,
        action: 'key.certified',
        subject: `machine:${caller.machine.id}`,
        outcome: 'success',
        details: {
          serial: caller.machine.serial,
          keyId: key.id,
          keyName: key.name,
          algorithm: key.algorithm,
          registrationId: key.registrationId,
          ...(retired === undefined ? {} : { retiredKeyId: retired.id }),
          ...(unchanged ? { unchanged: true } : {}),
        },
      },
      m,
    );
  }

  private async recordRetired(actor: string, key: CertifiedKey<Date>, reason: string, m: EntityManager, replacedBy?: string): Promise<void> {
    await this.audit.append(
      {
        actor,
        action: 'key.retired',
        subject: `machine:${key.machineId}`,
        outcome: 'success',
        details: { keyId: key.id, keyName: key.name, reason, ...(replacedBy === undefined ? {} : { replacedBy }) },
      },
      m,
    );
  }
}
