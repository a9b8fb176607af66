import { Injectable, Logger, Optional } from '@nestjs/common';
import { GROUP_PATTERN, GROUP_RULE, type GroupApprovals } from '@rackseal/api-contracts';
import { AuditBudget, AuditLog, SuppressedAuditRecords } from '@rackseal/audit';
import { type SecretBytes } from '@rackseal/config/secret-bytes';
import { MasterKeys, openEnvelope, sealEnvelope } from '@rackseal/envelope';
import type { Machine } from '@rackseal/machines';
import type { ApprovalsResponse } from '@rackseal/node-api-contracts';
import { approvalDigest, approvalPolicyRef, approvedPcrPolicy, type PcrPolicy } from '@rackseal/pcr-policy';
import { Clock, RandomSource } from '@rackseal/platform';
import { marshalTpmtSignature } from '@rackseal/tpm2';
import { DataSource, type EntityManager } from 'typeorm';
import { ApprovalEpochHook } from './approval-epoch-hook';
import { ApprovalError } from './approval-errors';
import { APPROVAL_SIGNING_ALGORITHM, createApprovalSigningKey, signApprovalDigest } from './approval-signing-key';
import { lockGroupPolicy } from './group-policy-lock';
import { PcrApprovalsRepository, pcrSigningKeyContext, type StoredPcrApproval, type StoredPcrSigningKey } from './pcr-approvals.repository';
import { PcrPoliciesRepository } from './pcr-policies.repository';

/** Who signs when an approval is brought up to date by a read rather than by a policy change. */
export const APPROVALS_SYSTEM_ACTOR = 'system:pcr-approvals';

/** What a `pcr-sealed` envelope of the group is sealed to now (the wrapping library's input). */
export interface SealingTarget {
  readonly group: string;
  /** The signing key's Name: PolicyAuthorize's keySign. */
  readonly signingKeyName: Buffer;
  /** Its TPM2B_PUBLIC. */
  readonly signingKeyPublic: Buffer;
  readonly epoch: number;
  /** approvalPolicyRef(group, epoch). */
  readonly policyRef: Buffer;
}

/** What a policy change did to the group's approvals. */
export interface ApprovalChange {
  readonly epoch: number;
  /** True when a withdrawn state moved the group to a new epoch. */
  readonly bumped: boolean;
  /** Labels signed in this change. */
  readonly signed: readonly string[];
}

/** One allowed set's approvedPolicy. */
interface Wanted {
  readonly label: string;
  readonly approvedPolicy: Buffer;
}

/** The approvals of a group as one consistent read. */
interface Snapshot {
  readonly key: StoredPcrSigningKey | undefined;
  readonly policy: PcrPolicy | undefined;
  readonly epoch: number;
  readonly approvals: StoredPcrApproval[];
}

/**
 * PCR approvals (issue 13 item 5; docs/decisions.md "PCR approvals (issue 13 item 5)"). A
 * `pcr-sealed` object's authPolicy is PolicyAuthorize(Name(signing key), policyRef(group, epoch));
 * the control plane signs, for each allowed set of the group's policy, aHash = SHA-256(approvedPolicy
 * ‖ policyRef) (TPM 2.0 Part 3 §23.16), approvedPolicy being the set's PolicyPCR digest.
 *
 * `reconcile` runs in the transaction of every policy change (PcrPolicies set, promote, remove),
 * under the group's lock: new sets are signed in the current epoch, existing ones kept; when the
 * change drops an approved state the group moves to the next epoch and every remaining set is
 * signed anew there (signatures cannot be un-signed: the epoch is the withdrawal, and envelopes of
 * an older epoch are re-wrapped by the deliveries). Audited `pcr-approvals.signed`,
 * `pcr-approvals.epoch-bumped` (labels, group, epochs, counts), and `pcr-approvals.key-created`.
 *
 * The signing key (RSA-2048, RSASSA-SHA256) is created on first use in the transaction that needs
 * it, its private key sealed under the master key (`pcr-signing-key:<id>`), opened for one signing
 * run at a time.
 */
@Injectable()
export class PcrApprovals {
  private readonly logger = new Logger(PcrApprovals.name);
  private readonly budget: AuditBudget;

  constructor(
    private readonly dataSource: DataSource,
    private readonly approvals: PcrApprovalsRepository,
    private readonly policies: PcrPoliciesRepository,
    private readonly audit: AuditLog,
    private readonly keys: MasterKeys,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    suppressed: SuppressedAuditRecords,
    // The re-wrap of the group's pcr-sealed deliveries at a new epoch (libs/deliveries); absent, none.
    @Optional() private readonly epochHook?: ApprovalEpochHook,
  ) {
    this.budget = new AuditBudget({}, (reason) => suppressed.add('pcr-approvals.refused', reason));
  }

  /**
   * Brings the group's approvals in line with `policy` (undefined: the policy was removed), in the
   * caller's transaction, which holds the group's lock (lockGroupPolicy).
   */
  async reconcile(group: string, policy: PcrPolicy | undefined, actor: string, m: EntityManager): Promise<ApprovalChange> {
    const wanted = wantedOf(policy);
    let epoch = await this.approvals.epoch(group, m);
    let kept = await this.approvals.approvals(group, epoch, m);
    const wantedHex = new Set(wanted.map((w) => w.approvedPolicy.toString('hex')));
    const withdrawn = kept.filter((a) => !wantedHex.has(a.approvedPolicy.toString('hex')));
    const now = this.clock.now();
    if (withdrawn.length > 0) {
      const from = epoch;
      epoch = await this.approvals.bumpEpoch(group, actor, now, m);
      kept = [];
      await this.audit.append(
        {
          actor,
          action: 'pcr-approvals.epoch-bumped',
          subject: `group:${group}`,
          outcome: 'success',
          details: { group, fromEpoch: from, toEpoch: epoch, withdrawn: withdrawn.map((a) => a.label), remaining: wanted.map((w) => w.label) },
        },
        m,
      );
      await this.epochHook?.epochBumped({ group, fromEpoch: from, toEpoch: epoch, actor }, m);
    }
    const keptByDigest = new Map(kept.map((a) => [a.approvedPolicy.toString('hex'), a]));
    const toSign: Wanted[] = [];
    for (const w of wanted) {
      const existing = keptByDigest.get(w.approvedPolicy.toString('hex'));
      if (existing === undefined) {
        toSign.push(w);
      } else if (existing.label !== w.label) {
        await this.approvals.relabel(existing.id, w.label, m);
      }
    }
    if (toSign.length > 0) {
      const key = await this.signingKeyIn(actor, m);
      const privateKey = openEnvelope(this.keys, pcrSigningKeyContext(key.id), key.keySealed);
      const policyRef = approvalPolicyRef(group, epoch);
      for (const w of toSign) {
        await this.approvals.insertApproval(
          {
            id: this.random.uuid(),
            group,
            epoch,
            label: w.label,
            approvedPolicy: w.approvedPolicy,
            signature: signed(privateKey, w.approvedPolicy, policyRef),
            signingKeyId: key.id,
            signedAt: now,
            signedBy: actor,
          },
          m,
        );
      }
      await this.audit.append(
        {
          actor,
          action: 'pcr-approvals.signed',
          subject: `group:${group}`,
          outcome: 'success',
          details: { group, epoch, labels: toSign.map((w) => w.label), count: toSign.length, kept: wanted.length - toSign.length, signingKeyName: key.name.toString('hex') },
        },
        m,
      );
    }
    return { epoch, bumped: withdrawn.length > 0, signed: toSign.map((w) => w.label) };
  }

  /** The group's current approval epoch (1 until a withdrawal bumped it): what issue 14's re-wraps compare envelopes with. */
  currentEpoch(group: string, manager?: EntityManager): Promise<number> {
    return this.approvals.epoch(group, manager);
  }

  /**
   * What a `pcr-sealed` envelope for the group is sealed to now, creating the signing key (and
   * signing the group's policy, should a policy stored before approvals existed have none) if
   * needed. In the caller's transaction when given one.
   */
  async sealingTarget(group: string, manager?: EntityManager): Promise<SealingTarget> {
    const work = async (m: EntityManager): Promise<SealingTarget> => {
      await lockGroupPolicy(group, m);
      await this.reconcile(group, (await this.policies.get(group, m))?.policy, APPROVALS_SYSTEM_ACTOR, m);
      const key = await this.signingKeyIn(APPROVALS_SYSTEM_ACTOR, m);
      const epoch = await this.approvals.epoch(group, m);
      return { group, signingKeyName: key.name, signingKeyPublic: key.publicArea, epoch, policyRef: approvalPolicyRef(group, epoch) };
    };
    return manager === undefined ? this.dataSource.transaction(work) : work(manager);
  }

  /**
   * GET /node/v1/approvals: the approvals of the calling machine's group. A quarantined machine
   * (whose credential the guard lets through for this check) gets none: its state is not approved.
   * Refusals are audited `pcr-approvals.refused` (at most 20 per code and minute per process).
   */
  async forMachine(machine: Machine, credentialId: string): Promise<ApprovalsResponse> {
    if (machine.state === 'quarantined') {
      await this.refuse(machine, credentialId, new ApprovalError('approval.machine-quarantined', `machine ${machine.id} is quarantined: it gets no PCR approvals until it attests again`));
    }
    if (machine.group === null) {
      await this.refuse(machine, credentialId, new ApprovalError('approval.no-group', `machine ${machine.id} is in no group: no PCR policy approves its states`));
    }
    const view = await this.view(machine.group!);
    return { ...view, approvals: view.approvals.map(({ label, approvedPolicy, signature }) => ({ label, approvedPolicy, signature })) };
  }

  /** GET /v1/groups/:group/approvals: the same, with when each approval was signed. */
  async show(group: string): Promise<GroupApprovals<Date>> {
    if (!GROUP_PATTERN.test(group)) {
      throw new ApprovalError('approval.invalid-group', `${JSON.stringify(group.slice(0, 70))}: ${GROUP_RULE}`);
    }
    return this.view(group);
  }

  /**
   * The group's approvals read in one snapshot. When the signing key is missing, or the approvals
   * do not match the stored policy (a policy stored before this feature, or written around
   * PcrPolicies), they are brought up to date first under the group's lock.
   */
  private async view(group: string): Promise<GroupApprovals<Date>> {
    let snapshot = await this.snapshot(group);
    if (snapshot.key === undefined || !upToDate(snapshot)) {
      await this.sealingTarget(group);
      snapshot = await this.snapshot(group);
    }
    const key = snapshot.key!;
    return {
      group,
      epoch: snapshot.epoch,
      policyRef: approvalPolicyRef(group, snapshot.epoch).toString('hex'),
      bank: snapshot.policy?.bank ?? 'sha256',
      pcrs: [...(snapshot.policy?.pcrs ?? [])],
      signingKeyPublic: key.publicArea.toString('base64'),
      signingKeyName: key.name.toString('hex'),
      approvals: snapshot.approvals.map((a) => ({ label: a.label, approvedPolicy: a.approvedPolicy.toString('hex'), signature: a.signature.toString('base64'), signedAt: a.signedAt })),
    };
  }

  private snapshot(group: string): Promise<Snapshot> {
    // REPEATABLE READ: the policy, the epoch and its approvals of one committed state.
    return this.dataSource.transaction('REPEATABLE READ', async (m) => {
      const key = await this.approvals.signingKey(m);
      const policy = (await this.policies.get(group, m))?.policy;
      const epoch = await this.approvals.epoch(group, m);
      return { key, policy, epoch, approvals: await this.approvals.approvals(group, epoch, m) };
    });
  }

  /** The signing key, created (audited `pcr-approvals.key-created`) in `m` when there is none; a concurrent creator's key wins. */
  private async signingKeyIn(actor: string, m: EntityManager): Promise<StoredPcrSigningKey> {
    const existing = await this.approvals.signingKey(m);
    if (existing !== undefined) {
      return existing;
    }
    const created = await createApprovalSigningKey();
    const id = this.random.uuid();
    const key: StoredPcrSigningKey = {
      id,
      algorithm: APPROVAL_SIGNING_ALGORITHM,
      publicArea: created.tpm2bPublic,
      name: created.name,
      keySealed: sealEnvelope(this.keys, pcrSigningKeyContext(id), created.privateKey, (n) => this.random.bytes(n)),
      createdAt: this.clock.now(),
      createdBy: actor,
    };
    if (await this.approvals.insertSigningKeyIfAbsent(key, m)) {
      await this.audit.append(
        { actor, action: 'pcr-approvals.key-created', subject: 'pcr-signing-key', outcome: 'success', details: { algorithm: key.algorithm, name: key.name.toString('hex') } },
        m,
      );
      return key;
    }
    return (await this.approvals.signingKey(m))!;
  }

  private async refuse(machine: Machine, credentialId: string, error: ApprovalError): Promise<never> {
    const take = this.budget.take(error.code, this.clock.now().getTime());
    if (take !== undefined) {
      if (take.suppressed > 0) {
        this.logger.warn({ code: error.code, suppressed: take.suppressed }, 'PCR approval refusals left out of the audit log (budget per minute)');
      }
      await this.audit.append({
        actor: `node-credential:${credentialId}`,
        action: 'pcr-approvals.refused',
        subject: `machine:${machine.id}`,
        outcome: 'refused',
        details: { code: error.code, reason: error.message, group: machine.group, state: machine.state, ...(take.suppressed > 0 ? { suppressed: take.suppressed } : {}) },
      });
    }
    throw error;
  }
}

/** One approvedPolicy per distinct allowed set (two sets of equal values share one approval, the first label). */
function wantedOf(policy: PcrPolicy | undefined): Wanted[] {
  const seen = new Set<string>();
  const wanted: Wanted[] = [];
  for (const set of policy?.allowedSets ?? []) {
    const approvedPolicy = approvedPcrPolicy(policy!, set);
    if (!seen.has(approvedPolicy.toString('hex'))) {
      seen.add(approvedPolicy.toString('hex'));
      wanted.push({ label: set.label, approvedPolicy });
    }
  }
  return wanted;
}

/** Whether the epoch's approvals are exactly the stored policy's sets. */
function upToDate(snapshot: Snapshot): boolean {
  const wanted = new Set(wantedOf(snapshot.policy).map((w) => w.approvedPolicy.toString('hex')));
  const have = new Set(snapshot.approvals.map((a) => a.approvedPolicy.toString('hex')));
  return wanted.size === have.size && [...wanted].every((hex) => have.has(hex));
}

/** The marshalled TPMT_SIGNATURE over aHash = SHA-256(approvedPolicy ‖ policyRef). */
function signed(privateKey: SecretBytes, approvedPolicy: Buffer, policyRef: Buffer): Buffer {
  return marshalTpmtSignature(signApprovalDigest(privateKey, approvalDigest(approvedPolicy, policyRef)));
}
