import { createHash } from 'node:crypto';
import { Injectable } from '@nestjs/common';
import { parseRuntimePolicy, type RuntimePolicy } from '@rackseal/ima';
import { DataSource, type EntityManager } from 'typeorm';

/** Whether a runtime-policy failure quarantines the machine (`enforce`) or is only recorded (`warn`). */
export type RuntimePolicyMode = 'enforce' | 'warn';
export const RUNTIME_POLICY_MODES: readonly RuntimePolicyMode[] = ['enforce', 'warn'];

/** What an attestation needs to know of a group's runtime policy before it needs the policy itself. */
export interface RuntimePolicySummary {
  readonly group: string;
  /** Lowercase hex SHA-256 of the stored JSON: the audit records and the verdicts name it. */
  readonly sha256: string;
  readonly mode: RuntimePolicyMode;
  readonly updatedAt: Date;
  readonly updatedBy: string;
}

/** A group's stored runtime policy: the Keylime JSON as imported, its SHA-256 and its mode. */
export interface StoredRuntimePolicy extends RuntimePolicySummary {
  /** The policy JSON text as stored (the imported document, serialized once). */
  readonly json: string;
}

interface Row {
  group_name: string;
  policy: string;
  sha256: string;
  mode: RuntimePolicyMode;
  updated_at: Date;
  updated_by: string;
}

/** Compiled policies kept per process, by SHA-256: a 300,000-file policy parses in about a second, and every re-attestation of the group needs it. */
const COMPILED_CACHE_SIZE = 8;

export function runtimePolicySha256(json: string): string {
  return createHash('sha256').update(json, 'utf8').digest('hex');
}

/**
 * The one owner of `runtime_policies` (migration 1765900000000). A policy is validated by libs/ima
 * (parseRuntimePolicy) before it is written; when read for an attestation it is compiled once per
 * process and digest, so a row edited by hand into something invalid refuses the attestations of its
 * group (a RuntimePolicyError, a 500 the operator sees in the log) rather than being half-applied.
 */
@Injectable()
export class RuntimePoliciesRepository {
  private readonly compiled = new Map<string, RuntimePolicy>();

  constructor(private readonly dataSource: DataSource) {}

  async get(group: string, manager?: EntityManager): Promise<StoredRuntimePolicy | undefined> {
    const [row] = (await (manager ?? this.dataSource).query('SELECT group_name, policy, sha256, mode, updated_at, updated_by FROM runtime_policies WHERE group_name = $1', [
      group,
    ])) as Row[];
    return row === undefined
      ? undefined
      : { group: row.group_name, json: row.policy, sha256: row.sha256, mode: row.mode, updatedAt: row.updated_at, updatedBy: row.updated_by };
  }

  /**
   * The policy's mode and digest without its document (which may be tens of MB): what a start asks,
   * and what a finish needs before the compiled policy (compiledFor).
   */
  async summary(group: string, manager?: EntityManager): Promise<RuntimePolicySummary | undefined> {
    const [row] = (await (manager ?? this.dataSource).query('SELECT group_name, sha256, mode, updated_at, updated_by FROM runtime_policies WHERE group_name = $1', [group])) as Omit<
      Row,
      'policy'
    >[];
    return row === undefined ? undefined : { group: row.group_name, sha256: row.sha256, mode: row.mode, updatedAt: row.updated_at, updatedBy: row.updated_by };
  }

  /**
   * The group's policy compiled, with its summary: from the process's cache when its digest was
   * compiled before (the document is then not read), else read and compiled once.
   */
  async compiledFor(group: string, manager: EntityManager): Promise<{ summary: RuntimePolicySummary; policy: RuntimePolicy } | undefined> {
    const summary = await this.summary(group, manager);
    const cached = summary === undefined ? undefined : this.compiled.get(summary.sha256);
    if (summary === undefined || cached !== undefined) {
      return summary === undefined ? undefined : { summary, policy: cached! };
    }
    const stored = await this.get(group, manager);
    return stored === undefined ? undefined : { summary: stored, policy: this.compile(stored) };
  }

  /** Sets a group's runtime policy; the caller has validated `json` (parseRuntimePolicy). */
  async put(group: string, json: string, mode: RuntimePolicyMode, by: string, at: Date, manager: EntityManager): Promise<StoredRuntimePolicy> {
    const sha256 = runtimePolicySha256(json);
    await manager.query(
      `INSERT INTO runtime_policies (group_name, policy, sha256, mode, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5, $6)
       ON CONFLICT (group_name) DO UPDATE SET policy = EXCLUDED.policy, sha256 = EXCLUDED.sha256, mode = EXCLUDED.mode, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by`,
      [group, json, sha256, mode, at, by],
    );
    return { group, json, sha256, mode, updatedAt: at, updatedBy: by };
  }

  async remove(group: string, manager: EntityManager): Promise<boolean> {
    const [, count] = (await manager.query('DELETE FROM runtime_policies WHERE group_name = $1', [group])) as [unknown, number];
    return count > 0;
  }

  /** The stored policy compiled (Maps and the exclude matcher), from the cache when this digest was compiled before. */
  compile(stored: StoredRuntimePolicy): RuntimePolicy {
    const cached = this.compiled.get(stored.sha256);
    if (cached !== undefined) {
      return cached;
    }
    const policy = parseRuntimePolicy(stored.json);
    if (this.compiled.size >= COMPILED_CACHE_SIZE) {
      this.compiled.delete(this.compiled.keys().next().value!);
    }
    this.compiled.set(stored.sha256, policy);
    return policy;
  }
}
