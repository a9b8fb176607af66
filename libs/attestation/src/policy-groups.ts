import { Injectable } from '@nestjs/common';
import { type FailingMachine, type GroupDetail, type GroupPolicyShape, type GroupSummary, MAX_GROUP_FAILING_MACHINES } from '@rackseal/api-contracts';
import { GroupAttestationIntervals, GroupIntervalsRepository, type GroupMachineCounts, type Machine, MACHINE_STATES, MachinesRepository, type MachineStateCounts } from '@rackseal/machines';
import type { PcrPolicy } from '@rackseal/pcr-policy';
import { DataSource } from 'typeorm';
import { AttestationRepository, type AttestationEvidence } from './attestation.repository';
import { nearestSet } from './pcr-differences';
import { checkPolicyGroup } from './pcr-policies';
import { PcrPoliciesRepository, type StoredPolicyShape } from './pcr-policies.repository';
import { PolicyError } from './policy-errors';

/** A failing machine with its newest verified quote, if any (what the group page and the promote preview compare). */
export interface FailingWithEvidence {
  readonly machine: Machine;
  readonly evidence: Omit<AttestationEvidence, 'eventLog'> | undefined;
}

const NO_MACHINES: MachineStateCounts = Object.fromEntries(MACHINE_STATES.map((s) => [s, 0])) as unknown as MachineStateCounts;

/**
 * The machine groups as the dashboard shows them (issue 16): each group's machines per state and
 * failing, its PCR policy's shape and its attestation interval (GET /v1/groups), and one group with
 * its failing machines set against its allowed sets (GET /v1/groups/:group). Read-only, through the
 * owners of each table (machines, pcr_policies, group_attestation_intervals, attestation_evidence);
 * the reads are not one snapshot — a view, not a decision.
 */
@Injectable()
export class PolicyGroups {
  constructor(
    private readonly dataSource: DataSource,
    private readonly machines: MachinesRepository,
    private readonly policies: PcrPoliciesRepository,
    private readonly registrations: AttestationRepository,
    private readonly intervals: GroupIntervalsRepository,
    private readonly fleetIntervals: GroupAttestationIntervals,
  ) {}

  /** Every group: of a machine, of a policy or of an interval of its own; ordered by name. */
  async list(): Promise<GroupSummary[]> {
    const [counts, shapes, own] = await Promise.all([this.machines.countByGroup(), this.policies.listShapes(), this.intervals.list()]);
    const countsOf = new Map(counts.map((c) => [c.group, c]));
    const shapeOf = new Map(shapes.map((s) => [s.group, s]));
    const intervalOf = new Map(own.map((i) => [i.group, i.intervalSeconds]));
    const names = [...new Set([...countsOf.keys(), ...shapeOf.keys(), ...intervalOf.keys()])].sort();
    return names.map((group) => this.summary(group, countsOf.get(group), shapeOf.get(group), intervalOf.get(group)));
  }

  /** One group and its failing machines; policy.group-not-found for a name no machine, policy or interval has. */
  async show(group: string): Promise<GroupDetail<Date>> {
    checkPolicyGroup(group);
    const [counts, stored, own] = await Promise.all([this.machines.countByGroup(group), this.policies.get(group), this.intervals.get(group)]);
    if (counts.length === 0 && stored === undefined && own === undefined) {
      throw new PolicyError('policy.group-not-found', `no group ${group}: no machine is in it and it has no PCR policy or attestation interval`);
    }
    const failing = await this.failingWithEvidence(group);
    const shape = stored === undefined ? undefined : { group, mode: stored.policy.mode, bank: stored.policy.bank, pcrs: stored.policy.pcrs, allowedSets: stored.policy.allowedSets.length };
    return { ...this.summary(group, counts[0], shape, own?.intervalSeconds), failingMachines: failing.map((f) => failingView(f, stored?.policy)) };
  }

  /** Whether the group exists (see list). */
  async exists(group: string): Promise<boolean> {
    const [counts, stored, own] = await Promise.all([this.machines.countByGroup(group), this.policies.get(group), this.intervals.get(group)]);
    return counts.length > 0 || stored !== undefined || own !== undefined;
  }

  /** The group's failing machines (the first MAX_GROUP_FAILING_MACHINES by serial), each with its newest verified quote. */
  async failingWithEvidence(group: string): Promise<FailingWithEvidence[]> {
    const failing = await this.machines.failingOf(group, MAX_GROUP_FAILING_MACHINES);
    const evidence = await this.registrations.latestEvidenceOfMany(
      failing.map((m) => m.id),
      this.dataSource.manager,
    );
    return failing.map((machine) => ({ machine, evidence: evidence.get(machine.id) }));
  }

  private summary(group: string, counts: GroupMachineCounts | undefined, shape: StoredPolicyShape | undefined, ownSeconds: number | undefined): GroupSummary {
    const policy: GroupPolicyShape | null = shape === undefined ? null : { mode: shape.mode, bank: shape.bank, pcrs: [...shape.pcrs], allowedSets: shape.allowedSets };
    return {
      group,
      machinesByState: { ...(counts?.byState ?? NO_MACHINES) },
      failing: counts?.failing ?? 0,
      policy,
      attestationIntervalSeconds: ownSeconds ?? this.fleetIntervals.fleetIntervalMs / 1000,
      intervalSource: ownSeconds === undefined ? 'fleet-default' : 'group',
    };
  }
}

function failingView({ machine, evidence }: FailingWithEvidence, policy: PcrPolicy | undefined): FailingMachine<Date> {
  const comparable = evidence !== undefined && policy !== undefined && evidence.bank === policy.bank;
  return {
    id: machine.id,
    serial: machine.serial,
    hostname: machine.hostname,
    state: machine.state,
    lastFailure: machine.lastFailure === null ? null : { at: machine.lastFailure.at, code: machine.lastFailure.code, reason: machine.lastFailure.reason },
    evidenceAt: evidence?.at ?? null,
    evidenceBank: evidence?.bank ?? null,
    comparison: comparable ? (nearestSet(policy.pcrs, policy.allowedSets, evidence.values) ?? null) : null,
  };
}
