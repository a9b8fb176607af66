import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import {
  type ApprovePolicySetRequest,
  GROUP_PATTERN,
  GROUP_RULE,
  type GroupPolicy,
  type PolicyPromotion,
  type PolicyRemoval,
  type PolicySetChange,
  type PromotePolicyRequest,
} from '@rackseal/api-contracts';
import { AuditLog } from '@rackseal/audit';
import { type Machine, MachineNotFoundError, MachinesRepository, parseMachineRef } from '@rackseal/machines';
import { labelOf, parsePcrPolicy, type PcrPolicy, PcrPolicyError, promoteToSet, withoutSet, withSet } from '@rackseal/pcr-policy';
import { Clock } from '@rackseal/platform';
import { DataSource, type EntityManager } from 'typeorm';
import { AttestationRepository, type AttestationEvidence } from './attestation.repository';
import { lockGroupPolicy } from './group-policy-lock';
import { MachineImaRepository, type RuntimeVerdict } from './machine-ima.repository';
import { PcrApprovals } from './pcr-approvals';
import { PcrPoliciesRepository, type StoredPcrPolicy } from './pcr-policies.repository';
import { PolicyError, type PolicyErrorCode } from './policy-errors';

/** Lowercase hex SHA-256 of the policy's JSON as stored (parsePcrPolicy's output, whose key order is fixed). */
export function policyDigest(policy: PcrPolicy): string {
  return createHash('sha256').update(JSON.stringify(policy)).digest('hex');
}

/** A promotion refused because of the canary's state: audited, then thrown after the commit. */
class RefusedPromotion {
  constructor(readonly error: PolicyError) {}
}

/**
 * The operator's PCR policy operations (issue 12 item 3): show, set, promote a canary's measured
 * values into a set, approve a stated set, withdraw a set, remove. Each change is one transaction holding the group's lock (so two
 * promotions into one group never lose a set), the row and its audit record (`policy.set`,
 * `policy.promoted`, `policy.removed`; details carry the policy's digest, never the event logs),
 * and the group's signed PCR approvals brought in line with the result (PcrApprovals.reconcile).
 * Refusals: policy-errors.ts.
 */
@Injectable()
export class PcrPolicies {
  constructor(
    private readonly dataSource: DataSource,
    private readonly policies: PcrPoliciesRepository,
    private readonly registrations: AttestationRepository,
    private readonly machines: MachinesRepository,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly approvals: PcrApprovals,
    private readonly imaStates: MachineImaRepository,
  ) {}

  async show(group: string): Promise<GroupPolicy<Date>> {
    checkPolicyGroup(group);
    const stored = await this.policies.get(group);
    if (stored === undefined) {
      throw new PolicyError('policy.not-found', `group ${group} has no PCR policy`);
    }
    return view(stored);
  }

  /**
   * The PCR values of a machine's newest verified quote, without its event log: what the dashboard
   * sets against the group's allowed sets (the explanation of a mismatch is on the machine's
   * lastFailure, written by the attestation that refused it), and the last verdict of the group's
   * runtime policy on its IMA list when one judged it. policy.no-evidence when none.
   */
  async evidenceOf(machineRef: string): Promise<Omit<AttestationEvidence, 'eventLog'> & { runtime?: RuntimeVerdict }> {
    const machine = await this.machines.findByRef(parseMachineRef(machineRef));
    if (machine === undefined) {
      throw new MachineNotFoundError(machineRef);
    }
    const evidence = await this.registrations.latestEvidence(machine.id, this.dataSource.manager);
    if (evidence === undefined) {
      throw new PolicyError('policy.no-evidence', `machine ${machine.serial} has no verified quote yet`);
    }
    const runtime = (await this.imaStates.get(machine.id, this.dataSource.manager))?.verdict ?? undefined;
    return { registrationId: evidence.registrationId, at: evidence.at, bank: evidence.bank, values: evidence.values, ...(runtime === undefined ? {} : { runtime }) };
  }

  /** Sets (or replaces) a group's policy; `body` must pass parsePcrPolicy, else nothing is written or audited. */
  async set(group: string, body: unknown, actor: string): Promise<GroupPolicy<Date>> {
    checkPolicyGroup(group);
    const policy = validated(body);
    return this.dataSource.transaction(async (m) => {
      await lockGroupPolicy(group, m);
      const previous = await this.policies.get(group, m);
      const now = this.clock.now();
      await this.policies.put(group, policy, actor, now, m);
      const digest = policyDigest(policy);
      await this.audit.append(
        {
          actor,
          action: 'policy.set',
          subject: `group:${group}`,
          outcome: 'success',
          details: { group, digest, previousDigest: previous === undefined ? null : policyDigest(previous.policy), ...shapeOf(policy) },
        },
        m,
      );
      await this.approvals.reconcile(group, policy, actor, m);
      return { group, policy, digest, updatedAt: now, updatedBy: actor };
    });
  }

  /**
   * Adds (or replaces) the set `label` with the canary's latest evidence: its quoted values of the
   * policy's PCRs and its event log. Refused, and audited, when the canary is revoked, not of the
   * group, has no evidence, or its evidence is of another bank or lacks a PCR of the policy.
   */
  async promote(group: string, request: PromotePolicyRequest, actor: string): Promise<PolicyPromotion<Date>> {
    checkPolicyGroup(group);
    const ref = parseMachineRef(request.machine);
    const label = validatedLabel(request.label);
    const result = await this.dataSource.transaction(async (m): Promise<PolicyPromotion<Date> | RefusedPromotion> => {
      await lockGroupPolicy(group, m);
      const machine = await this.machines.findByRef(ref, m);
      if (machine === undefined) {
        throw new MachineNotFoundError(request.machine);
      }
      try {
        return await this.promoteIn(m, group, machine, request, label, actor);
      } catch (error) {
        if (!(error instanceof PolicyError)) {
          throw error;
        }
        await this.audit.append(
          {
            actor,
            action: 'policy.promoted',
            subject: `group:${group}`,
            outcome: 'refused',
            details: { group, label, machineId: machine.id, serial: machine.serial, code: error.code, reason: error.message },
          },
          m,
        );
        return new RefusedPromotion(error);
      }
    });
    if (result instanceof RefusedPromotion) {
      throw result.error;
    }
    return result;
  }

  /**
   * Approves one more state of an existing policy from stated values (the set `label`, replacing a
   * set of that label): its approval is signed in the group's current epoch, so envelopes already
   * sealed to the group open in that state without a re-wrap. Replacing a set's values withdraws the
   * old ones (a new epoch).
   */
  async approve(group: string, request: ApprovePolicySetRequest, actor: string): Promise<PolicySetChange<Date>> {
    checkPolicyGroup(group);
    const label = validatedLabel(request.label);
    return this.changeSets(group, actor, { action: 'policy.approved', label }, (policy) => {
      const replaced = policy.allowedSets.some((s) => s.label === label);
      // withSet validates the whole result (parsePcrPolicy): values of the policy's PCRs and bank only.
      return { replaced, policy: refusingAs('policy.invalid', () => withSet(policy, { label, values: request.values as Readonly<Record<number, string>> })) };
    });
  }

  /**
   * Withdraws the set `label`: its approval stops being served and the group moves to a new approval
   * epoch (signatures cannot be un-signed; docs/decisions.md "PCR approvals"). The last set cannot be
   * withdrawn: remove the policy for that.
   */
  async withdraw(group: string, label: string, actor: string): Promise<PolicySetChange<Date>> {
    checkPolicyGroup(group);
    const checked = validatedLabel(label);
    return this.changeSets(group, actor, { action: 'policy.withdrawn', label: checked }, (policy) => ({ replaced: false, policy: refusingAs('policy.invalid', () => withoutSet(policy, checked)) }));
  }

  /** Removes a group's policy: its machines are quarantined (attestation.no-policy) until one is set. */
  async remove(group: string, actor: string): Promise<PolicyRemoval> {
    checkPolicyGroup(group);
    return this.dataSource.transaction(async (m) => {
      await lockGroupPolicy(group, m);
      const previous = await this.policies.get(group, m);
      if (previous === undefined) {
        throw new PolicyError('policy.not-found', `group ${group} has no PCR policy`);
      }
      await this.policies.remove(group, m);
      await this.audit.append(
        { actor, action: 'policy.removed', subject: `group:${group}`, outcome: 'success', details: { group, digest: policyDigest(previous.policy) } },
        m,
      );
      await this.approvals.reconcile(group, undefined, actor, m);
      return { group, removed: true };
    });
  }

  /** One change of an existing policy's sets, under the group's lock, audited, approvals reconciled. */
  private async changeSets(
    group: string,
    actor: string,
    { action, label }: { action: 'policy.approved' | 'policy.withdrawn'; label: string },
    change: (policy: PcrPolicy) => { replaced: boolean; policy: PcrPolicy },
  ): Promise<PolicySetChange<Date>> {
    return this.dataSource.transaction(async (m) => {
      await lockGroupPolicy(group, m);
      const previous = await this.policies.get(group, m);
      if (previous === undefined) {
        throw new PolicyError('policy.not-found', `group ${group} has no PCR policy: set one (policy set) or promote a canary first`);
      }
      const { replaced, policy } = change(previous.policy);
      const now = this.clock.now();
      await this.policies.put(group, policy, actor, now, m);
      const digest = policyDigest(policy);
      const approvals = await this.approvals.reconcile(group, policy, actor, m);
      await this.audit.append(
        {
          actor,
          action,
          subject: `group:${group}`,
          outcome: 'success',
          details: { group, label, replaced, digest, previousDigest: policyDigest(previous.policy), approvalEpoch: approvals.epoch, epochBumped: approvals.bumped, ...shapeOf(policy) },
        },
        m,
      );
      return { label, replaced, approvalEpoch: approvals.epoch, policy: { group, policy, digest, updatedAt: now, updatedBy: actor } };
    });
  }

  private async promoteIn(m: EntityManager, group: string, machine: Machine, request: PromotePolicyRequest, label: string, actor: string): Promise<PolicyPromotion<Date>> {
    if (machine.state === 'revoked') {
      throw new PolicyError('policy.machine-revoked', `machine ${machine.serial} is revoked: its values cannot be promoted`);
    }
    if (machine.group !== group) {
      throw new PolicyError('policy.machine-not-in-group', `machine ${machine.serial} is in group ${machine.group ?? '(none)'}, not ${group}`);
    }
    const evidence = await this.registrations.latestEvidence(machine.id, m);
    if (evidence === undefined) {
      throw new PolicyError('policy.no-evidence', `machine ${machine.serial} has no verified quote yet: let it attest once, then promote it`);
    }
    if (request.registrationId !== undefined && request.registrationId !== evidence.registrationId) {
      // The canary attested again between the preview and the confirmation: its values may differ from those shown.
      throw new PolicyError('policy.evidence-changed', `machine ${machine.serial} has attested again since the quote you saw (${request.registrationId}): preview it again`);
    }
    const existing = await this.policies.get(group, m);
    const shape = existing === undefined ? firstShape(request, evidence) : sameShape(existing.policy, request, evidence);
    const set = refusingAs('policy.evidence-incomplete', () =>
      promoteToSet(shape, label, machine.serial, { bank: evidence.bank, values: valuesOf(evidence) }, evidence.eventLog, evidence.at),
    );
    const replaced = existing?.policy.allowedSets.some((s) => s.label === label) ?? false;
    const policy = refusingAs('policy.invalid', () =>
      existing === undefined ? parsePcrPolicy({ ...shape, allowedSets: [set] }) : withSet(existing.policy, set),
    );
    const now = this.clock.now();
    await this.policies.put(group, policy, actor, now, m);
    const digest = policyDigest(policy);
    await this.audit.append(
      {
        actor,
        action: 'policy.promoted',
        subject: `group:${group}`,
        outcome: 'success',
        details: {
          group,
          label,
          machineId: machine.id,
          serial: machine.serial,
          registrationId: evidence.registrationId,
          evidenceAt: evidence.at.toISOString(),
          created: existing === undefined,
          replaced,
          digest,
          previousDigest: existing === undefined ? null : policyDigest(existing.policy),
          ...shapeOf(policy),
        },
      },
      m,
    );
    await this.approvals.reconcile(group, policy, actor, m);
    return {
      created: existing === undefined,
      replaced,
      label,
      machine: { id: machine.id, serial: machine.serial },
      registrationId: evidence.registrationId,
      evidenceAt: evidence.at,
      policy: { group, policy, digest, updatedAt: now, updatedBy: actor },
    };
  }
}

type Shape = Pick<PcrPolicy, 'bank' | 'pcrs' | 'mode'>;

/** A group's first policy: the request's mode, bank and PCRs, else enforce and the evidence's. */
function firstShape(request: PromotePolicyRequest, evidence: AttestationEvidence): Shape {
  if (request.bank !== undefined && request.bank !== evidence.bank) {
    throw new PolicyError('policy.bank-mismatch', `the machine's evidence is of the ${evidence.bank} bank, not ${request.bank}`);
  }
  const pcrs = request.pcrs === undefined ? Object.keys(evidence.values).map(Number).sort((a, b) => a - b) : [...request.pcrs];
  // The PCR list is validated with the whole policy (parsePcrPolicy) once the set is made.
  return { bank: evidence.bank, pcrs, mode: request.mode ?? 'enforce' };
}

/** A group with a policy keeps its mode, bank and PCRs: the request may only repeat them. */
function sameShape(policy: PcrPolicy, request: PromotePolicyRequest, evidence: AttestationEvidence): Shape {
  const differs: string[] = [];
  if (request.mode !== undefined && request.mode !== policy.mode) {
    differs.push(`mode ${request.mode} (the policy's is ${policy.mode})`);
  }
  if (request.bank !== undefined && request.bank !== policy.bank) {
    differs.push(`bank ${request.bank} (the policy's is ${policy.bank})`);
  }
  if (request.pcrs !== undefined && request.pcrs.join(',') !== policy.pcrs.join(',')) {
    differs.push(`PCRs ${request.pcrs.join(',')} (the policy's are ${policy.pcrs.join(',')})`);
  }
  if (differs.length > 0) {
    throw new PolicyError('policy.shape-conflict', `the group's policy exists: ${differs.join(', ')}; change it with policy set`);
  }
  if (evidence.bank !== policy.bank) {
    throw new PolicyError('policy.bank-mismatch', `the machine's evidence is of the ${evidence.bank} bank, the policy's is ${policy.bank}`);
  }
  return { bank: policy.bank, pcrs: policy.pcrs, mode: policy.mode };
}

function valuesOf(evidence: AttestationEvidence): Map<number, Buffer> {
  return new Map(Object.entries(evidence.values).map(([pcr, hex]) => [Number(pcr), Buffer.from(hex, 'hex')]));
}

/** libs/pcr-policy's refusal as this library's: evidence fields (`quoted.*`) as `code`, the rest as policy.invalid. */
function refusingAs<T>(code: PolicyErrorCode, work: () => T): T {
  try {
    return work();
  } catch (error) {
    if (error instanceof PcrPolicyError) {
      throw new PolicyError(error.field.startsWith('quoted.') ? code : 'policy.invalid', error.message);
    }
    throw error;
  }
}

function validated(body: unknown): PcrPolicy {
  return refusingAs('policy.invalid', () => parsePcrPolicy(body));
}

function validatedLabel(label: unknown): string {
  return refusingAs('policy.invalid', () => labelOf('label', label));
}

/** A group name as the inventory accepts it (GROUP_PATTERN), else policy.invalid-group. */
export function checkPolicyGroup(group: string): void {
  if (!GROUP_PATTERN.test(group)) {
    throw new PolicyError('policy.invalid-group', `${JSON.stringify(group.slice(0, 70))}: ${GROUP_RULE}`);
  }
}

function shapeOf(policy: PcrPolicy): { mode: string; bank: string; pcrs: number[]; sets: string[] } {
  return { mode: policy.mode, bank: policy.bank, pcrs: [...policy.pcrs], sets: policy.allowedSets.map((s) => s.label) };
}

function view(stored: StoredPcrPolicy): GroupPolicy<Date> {
  return { group: stored.group, policy: stored.policy, digest: policyDigest(stored.policy), updatedAt: stored.updatedAt, updatedBy: stored.updatedBy };
}
