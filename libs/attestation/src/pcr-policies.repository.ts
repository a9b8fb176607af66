import { Injectable } from '@nestjs/common';
import { type PcrPolicy, parsePcrPolicy } from '@rackseal/pcr-policy';
import { DataSource, type EntityManager } from 'typeorm';
import { PcrPolicySource } from './pcr-policy-source';

/** A group's stored policy and who last set it. */
export interface StoredPcrPolicy {
  readonly group: string;
  readonly policy: PcrPolicy;
  readonly updatedAt: Date;
  readonly updatedBy: string;
}

/** A group's policy without its sets (PcrPoliciesRepository.listShapes). */
export interface StoredPolicyShape {
  readonly group: string;
  readonly mode: PcrPolicy['mode'];
  readonly bank: string;
  readonly pcrs: readonly number[];
  readonly allowedSets: number;
}

interface PolicyRow {
  group_name: string;
  policy: unknown;
  updated_at: Date;
  updated_by: string;
}

/**
 * The one owner of `pcr_policies`: each machine group's PCR policy as libs/pcr-policy's JSON. A
 * policy is validated (parsePcrPolicy) before it is written and again when it is read, so a row
 * edited by hand into something invalid refuses attestations of its group (PcrPolicyError, a 500
 * the operator sees in the log) instead of being half-applied. The operator API's `policy set|show|
 * promote` writes through `put`.
 */
@Injectable()
export class PcrPoliciesRepository {
  constructor(private readonly dataSource: DataSource) {}

  async get(group: string, manager?: EntityManager): Promise<StoredPcrPolicy | undefined> {
    const [row] = (await (manager ?? this.dataSource).query('SELECT group_name, policy, updated_at, updated_by FROM pcr_policies WHERE group_name = $1', [
      group,
    ])) as PolicyRow[];
    return row === undefined ? undefined : { group: row.group_name, policy: parsePcrPolicy(row.policy), updatedAt: row.updated_at, updatedBy: row.updated_by };
  }

  /**
   * Every group's policy shape (mode, bank, PCRs, number of sets), ordered by group: the groups list.
   * Read field by field rather than parsed whole, since each set may carry a canary's event log of up
   * to 1 MiB and the list needs none of them; a row edited by hand into something invalid still
   * refuses its group's attestations and `get` (above).
   */
  async listShapes(manager?: EntityManager): Promise<StoredPolicyShape[]> {
    const rows = (await (manager ?? this.dataSource).query(
      `SELECT group_name, policy->>'mode' AS mode, policy->>'bank' AS bank, policy->'pcrs' AS pcrs, jsonb_array_length(policy->'allowedSets') AS sets
       FROM pcr_policies ORDER BY group_name`,
    )) as { group_name: string; mode: PcrPolicy['mode']; bank: string; pcrs: number[]; sets: number }[];
    return rows.map((r) => ({ group: r.group_name, mode: r.mode, bank: r.bank, pcrs: r.pcrs.map(Number), allowedSets: Number(r.sets) }));
  }

  /** Sets a group's policy (replacing its previous one); `policy` is validated first. */
  async put(group: string, policy: unknown, by: string, at: Date, manager?: EntityManager): Promise<PcrPolicy> {
    const valid = parsePcrPolicy(policy);
    await (manager ?? this.dataSource).query(
      `INSERT INTO pcr_policies (group_name, policy, updated_at, updated_by) VALUES ($1, $2::jsonb, $3, $4)
       ON CONFLICT (group_name) DO UPDATE SET policy = EXCLUDED.policy, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
      [group, JSON.stringify(valid), at, by],
    );
    return valid;
  }

  /** Removes a group's policy: its machines are quarantined with attestation.no-policy until one is set. */
  async remove(group: string, manager?: EntityManager): Promise<boolean> {
    const [, count] = (await (manager ?? this.dataSource).query('DELETE FROM pcr_policies WHERE group_name = $1', [group])) as [unknown, number];
    return count > 0;
  }
}

/** The policy source the control plane uses: the group's row of `pcr_policies`, none for a machine without a group. */
@Injectable()
export class StoredPcrPolicySource extends PcrPolicySource {
  constructor(private readonly policies: PcrPoliciesRepository) {
    super();
  }

  async policyFor(group: string | null, manager?: EntityManager): Promise<PcrPolicy | undefined> {
    return group === null ? undefined : (await this.policies.get(group, manager))?.policy;
  }
}
