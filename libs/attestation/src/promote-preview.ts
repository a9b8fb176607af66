import { Injectable } from '@nestjs/common';
import type { PromotePreview } from '@rackseal/api-contracts';
import { MachineNotFoundError, MachinesRepository, parseMachineRef } from '@rackseal/machines';
import { DataSource } from 'typeorm';
import { AttestationRepository } from './attestation.repository';
import { differingPcrs } from './pcr-differences';
import { checkPolicyGroup } from './pcr-policies';
import { PcrPoliciesRepository } from './pcr-policies.repository';
import { PolicyError } from './policy-errors';
import { PolicyGroups } from './policy-groups';

/** The recovering serials a preview names (its count is of all). */
const MAX_RECOVERING_SERIALS = 100;

/**
 * What `policy promote` would do with this canary, without doing it (issue 16, the dashboard's
 * promote dialog): the set it would approve, which PCRs differ from each allowed set, and how many of
 * the group's failing machines have exactly these values (they pass at their next attestation). The
 * canary is checked as PcrPolicies.promote checks it, in the same order and with the same codes, so
 * a preview that answers is a promotion that would not be refused for the canary (a policy changed
 * meanwhile may still refuse it). Read-only: nothing locked, written or audited.
 */
@Injectable()
export class PromotePreviews {
  constructor(
    private readonly dataSource: DataSource,
    private readonly machines: MachinesRepository,
    private readonly policies: PcrPoliciesRepository,
    private readonly registrations: AttestationRepository,
    private readonly groups: PolicyGroups,
  ) {}

  async preview(group: string, machineRef: string): Promise<PromotePreview<Date>> {
    checkPolicyGroup(group);
    const ref = parseMachineRef(machineRef);
    if (!(await this.groups.exists(group))) {
      throw new PolicyError('policy.group-not-found', `no group ${group}: no machine is in it and it has no PCR policy or attestation interval`);
    }
    const machine = await this.machines.findByRef(ref);
    if (machine === undefined) {
      throw new MachineNotFoundError(machineRef);
    }
    if (machine.state === 'revoked') {
      throw new PolicyError('policy.machine-revoked', `machine ${machine.serial} is revoked: its values cannot be promoted`);
    }
    if (machine.group !== group) {
      throw new PolicyError('policy.machine-not-in-group', `machine ${machine.serial} is in group ${machine.group ?? '(none)'}, not ${group}`);
    }
    const evidence = await this.registrations.latestEvidence(machine.id, this.dataSource.manager);
    if (evidence === undefined) {
      throw new PolicyError('policy.no-evidence', `machine ${machine.serial} has no verified quote yet: let it attest once, then promote it`);
    }
    const stored = await this.policies.get(group);
    const policy = stored?.policy;
    if (policy !== undefined && evidence.bank !== policy.bank) {
      throw new PolicyError('policy.bank-mismatch', `the machine's evidence is of the ${evidence.bank} bank, the policy's is ${policy.bank}`);
    }
    // A first policy takes the evidence's PCRs, as promote does without `pcrs`.
    const pcrs = policy?.pcrs ?? Object.keys(evidence.values).map(Number).sort((a, b) => a - b);
    const missing = pcrs.filter((pcr) => evidence.values[String(pcr)] === undefined);
    if (missing.length > 0) {
      throw new PolicyError('policy.evidence-incomplete', `the machine's evidence lacks PCR ${missing.join(', ')} of the policy`);
    }
    const values = Object.fromEntries(pcrs.map((pcr) => [String(pcr), evidence.values[String(pcr)]!]));
    const sets = policy?.allowedSets ?? [];
    const comparedSets = sets.map((set) => ({ label: set.label, differingPcrs: differingPcrs(pcrs, values, set.values) }));
    const failing = await this.groups.failingWithEvidence(group);
    const recovering = failing
      .filter(({ evidence: e }) => e !== undefined && e.bank === evidence.bank && differingPcrs(pcrs, e.values, values).length === 0)
      .map(({ machine: m }) => m.serial);
    return {
      group,
      machine: { id: machine.id, serial: machine.serial, state: machine.state },
      evidence: { registrationId: evidence.registrationId, at: evidence.at, bank: evidence.bank },
      policyExists: policy !== undefined,
      mode: policy?.mode ?? 'enforce',
      bank: evidence.bank,
      pcrs: [...pcrs],
      values,
      sameAsSet: comparedSets.find((c) => c.differingPcrs.length === 0)?.label ?? null,
      newPcrValues: pcrs.filter((pcr) => sets.every((set) => set.values[pcr] !== values[String(pcr)])),
      comparedSets,
      recovers: { count: recovering.length, serials: recovering.slice(0, MAX_RECOVERING_SERIALS), failingCompared: failing.length },
    };
  }
}
