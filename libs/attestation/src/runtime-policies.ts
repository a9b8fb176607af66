import { Injectable } from '@nestjs/common';
import {
  type GroupRuntimePolicy,
  POLICY_MODES,
  type PolicyMode,
  type RuntimePolicyFromMachineRequest,
  type RuntimePolicyRemoval,
  type SetRuntimePolicyRequest,
} from '@rackseal/api-contracts';
import { AuditLog } from '@rackseal/audit';
import { parseRuntimePolicy, type RuntimePolicy, RuntimePolicyError } from '@rackseal/ima';
import { MachineNotFoundError, MachinesRepository, parseMachineRef } from '@rackseal/machines';
import { Clock } from '@rackseal/platform';
import { DataSource, type EntityManager } from 'typeorm';
import { MachineImaRepository } from './machine-ima.repository';
import { checkPolicyGroup } from './pcr-policies';
import { PolicyError } from './policy-errors';
import { OBSERVED_BYTES_LIMIT, OBSERVED_DIGEST_LIMIT } from './runtime-integrity-check';
import { RuntimePoliciesRepository, type StoredRuntimePolicy } from './runtime-policies.repository';

/** A from-machine refused because of the canary's state: audited, then thrown after the commit. */
class RefusedCapture {
  constructor(readonly error: PolicyError) {}
}

/**
 * The operator's runtime policy operations (issue 17): show, set (a Keylime runtime policy as
 * imported), set from a canary machine's verified measurements, remove. Each change is one
 * transaction with its audit record (`policy.runtime-set`, `policy.runtime-removed`; details carry
 * the policy's SHA-256 and size, never the document). A body libs/ima refuses is `policy.invalid`
 * naming the field, and writes nothing.
 */
@Injectable()
export class RuntimePolicies {
  constructor(
    private readonly dataSource: DataSource,
    private readonly policies: RuntimePoliciesRepository,
    private readonly states: MachineImaRepository,
    private readonly machines: MachinesRepository,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  async show(group: string): Promise<GroupRuntimePolicy<Date>> {
    checkPolicyGroup(group);
    const stored = await this.policies.get(group);
    if (stored === undefined) {
      throw new PolicyError('policy.not-found', `group ${group} has no runtime policy`);
    }
    return view(stored, this.policies.compile(stored));
  }

  async set(group: string, request: SetRuntimePolicyRequest, actor: string): Promise<GroupRuntimePolicy<Date>> {
    checkPolicyGroup(group);
    const mode = modeOf(request.mode);
    const json = JSON.stringify(request.policy ?? null);
    const compiled = compileOrRefuse(json);
    return this.dataSource.transaction((m) => this.store(m, group, json, compiled, mode, actor, { source: 'document' }));
  }

  /**
   * The canary's measurements verified this boot (every file and digest its quotes covered, no
   * violation) as a Keylime runtime policy with the excludes given. Refused, and audited, when the
   * canary is revoked, not of the group, has no verified measurements, or had more than the server keeps.
   */
  async fromMachine(group: string, request: RuntimePolicyFromMachineRequest, actor: string): Promise<GroupRuntimePolicy<Date>> {
    checkPolicyGroup(group);
    const mode = modeOf(request.mode);
    const ref = parseMachineRef(request.machine);
    const result = await this.dataSource.transaction(async (m): Promise<GroupRuntimePolicy<Date> | RefusedCapture> => {
      const machine = await this.machines.findByRef(ref, m);
      if (machine === undefined) {
        throw new MachineNotFoundError(request.machine);
      }
      const refused = async (error: PolicyError): Promise<RefusedCapture> => {
        await this.audit.append(
          {
            actor,
            action: 'policy.runtime-set',
            subject: `group:${group}`,
            outcome: 'refused',
            details: { group, machineId: machine.id, serial: machine.serial, code: error.code, reason: error.message },
          },
          m,
        );
        return new RefusedCapture(error);
      };
      if (machine.state === 'revoked') {
        return refused(new PolicyError('policy.machine-revoked', `machine ${machine.serial} is revoked: a revoked machine is no canary`));
      }
      if (machine.group !== group) {
        return refused(new PolicyError('policy.machine-not-in-group', `machine ${machine.serial} is in group ${machine.group ?? '(none)'}, not ${group}`));
      }
      const observed = await this.states.observedOf(machine.id, m);
      if (observed === undefined || observed.count === 0) {
        return refused(
          new PolicyError(
            'policy.no-evidence',
            `machine ${machine.serial} has no verified IMA measurements this boot: its agent sends the list once its group has a runtime policy (set one in warn mode, let the canary attest, then capture)`,
          ),
        );
      }
      if (observed.truncated) {
        return refused(new PolicyError('policy.runtime-capture-incomplete', `machine ${machine.serial} measured more than the server keeps (${OBSERVED_DIGEST_LIMIT} digests, ${OBSERVED_BYTES_LIMIT} bytes of policy JSON): write the policy with keylime-policy and set it with --file`));
      }
      const document = {
        meta: { version: 1, generator: 0, timestamp: this.clock.now().toISOString() },
        release: 0,
        digests: observed.digests,
        excludes: [...(request.excludes ?? [])],
        keyrings: {},
        ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
        'ima-buf': observed.imaBuf,
        'verification-keys': '',
      };
      const json = JSON.stringify(document);
      const compiled = compileOrRefuse(json);
      return this.store(m, group, json, compiled, mode, actor, { source: 'machine', machineId: machine.id, serial: machine.serial });
    });
    if (result instanceof RefusedCapture) {
      throw result.error;
    }
    return result;
  }

  async remove(group: string, actor: string): Promise<RuntimePolicyRemoval> {
    checkPolicyGroup(group);
    return this.dataSource.transaction(async (m) => {
      await lockRuntimePolicy(group, m);
      const previous = await this.policies.summary(group, m);
      if (previous === undefined) {
        throw new PolicyError('policy.not-found', `group ${group} has no runtime policy`);
      }
      await this.policies.remove(group, m);
      await this.audit.append({ actor, action: 'policy.runtime-removed', subject: `group:${group}`, outcome: 'success', details: { group, sha256: previous.sha256 } }, m);
      return { group, removed: true };
    });
  }

  private async store(
    m: EntityManager,
    group: string,
    json: string,
    compiled: RuntimePolicy,
    mode: PolicyMode,
    actor: string,
    source: Record<string, string>,
  ): Promise<GroupRuntimePolicy<Date>> {
    await lockRuntimePolicy(group, m);
    const previous = await this.policies.summary(group, m);
    const stored = await this.policies.put(group, json, mode, actor, this.clock.now(), m);
    await this.audit.append(
      {
        actor,
        action: 'policy.runtime-set',
        subject: `group:${group}`,
        outcome: 'success',
        details: { group, sha256: stored.sha256, previousSha256: previous?.sha256 ?? null, mode, paths: compiled.digests.size, excludes: compiled.excludes.length, ...source },
      },
      m,
    );
    return view(stored, compiled);
  }
}

/**
 * Serialises the changes of one group's runtime policy (transaction-scoped): without it two removes
 * at once both found the policy and both answered and audited its removal, and two sets at once
 * both named the same previous policy in their records.
 */
async function lockRuntimePolicy(group: string, m: EntityManager): Promise<void> {
  await m.query("SELECT pg_advisory_xact_lock(hashtextextended('runtime_policies:' || $1, 0))", [group]);
}

function modeOf(mode: unknown): PolicyMode {
  if (mode === undefined) {
    return 'enforce';
  }
  if (!(POLICY_MODES as readonly unknown[]).includes(mode)) {
    throw new PolicyError('policy.invalid', `mode must be one of ${POLICY_MODES.join(', ')}`);
  }
  return mode as PolicyMode;
}

function compileOrRefuse(json: string): RuntimePolicy {
  try {
    return parseRuntimePolicy(json);
  } catch (error) {
    if (error instanceof RuntimePolicyError) {
      throw new PolicyError('policy.invalid', error.message);
    }
    throw error;
  }
}

function view(stored: StoredRuntimePolicy, compiled: RuntimePolicy): GroupRuntimePolicy<Date> {
  return {
    group: stored.group,
    mode: stored.mode,
    sha256: stored.sha256,
    policy: JSON.parse(stored.json) as Record<string, unknown>,
    paths: compiled.digests.size,
    excludes: compiled.excludes.length,
    updatedAt: stored.updatedAt,
    updatedBy: stored.updatedBy,
  };
}
