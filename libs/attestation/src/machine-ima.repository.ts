import { Injectable } from '@nestjs/common';
import type { RuntimeFailureView, RuntimeVerdictView } from '@rackseal/api-contracts';
import { type ImaAttestationState, readImaState } from '@rackseal/ima';
import type { EntityManager } from 'typeorm';

/** One failed entry as a verdict keeps it: the entry's index, file, digest and the rule it broke. */
export type RuntimeFailure = RuntimeFailureView;

/** The last runtime verdict of a machine (what the operator API's evidence shows). */
export type RuntimeVerdict = RuntimeVerdictView;

/**
 * The files and digests of the entries verified this boot (covered by a quote, not violations): what
 * `policy runtime set --from-machine` makes an allowlist of. `truncated` once it reached
 * OBSERVED_DIGEST_LIMIT: then it is incomplete and not offered as a policy.
 */
export interface ObservedMeasurements {
  readonly bootTime: string | null;
  /** path → lowercase hex digests (file measurements: ima, ima-ng, ima-sig). */
  readonly digests: Record<string, string[]>;
  /** buffer name → lowercase hex digests (ima-buf). */
  readonly imaBuf: Record<string, string[]>;
  readonly count: number;
  readonly truncated: boolean;
}

export interface MachineImaRecord {
  /** undefined: none yet, or a stored state that does not read back (the round starts from zero). */
  readonly state: ImaAttestationState | undefined;
  readonly verdict: RuntimeVerdict | null;
  readonly observed: ObservedMeasurements;
}

export const EMPTY_OBSERVED: ObservedMeasurements = { bootTime: null, digests: {}, imaBuf: {}, count: 0, truncated: false };

interface Row {
  state: unknown;
  verdict: RuntimeVerdict | null;
  observed: Partial<ObservedMeasurements>;
}

function readObserved(value: Partial<ObservedMeasurements> | null | undefined): ObservedMeasurements {
  if (value === null || value === undefined || typeof value.digests !== 'object' || typeof value.imaBuf !== 'object') {
    return EMPTY_OBSERVED;
  }
  return { bootTime: value.bootTime ?? null, digests: value.digests, imaBuf: value.imaBuf, count: value.count ?? 0, truncated: value.truncated === true };
}

/**
 * The one owner of `machine_ima_states` (migration 1765900000000): per machine, libs/ima's
 * incremental state, the last runtime verdict and the measurements observed this boot. Written in
 * the transaction of the attestation that judged them, so the state never runs ahead of the outcome.
 */
@Injectable()
export class MachineImaRepository {
  /** The machine's record, its row locked until the transaction ends (two finishes of one machine do not interleave). */
  async getForUpdate(machineId: string, manager: EntityManager): Promise<MachineImaRecord> {
    const [row] = (await manager.query('SELECT state, verdict, observed FROM machine_ima_states WHERE machine_id = $1 FOR UPDATE', [machineId])) as Row[];
    return row === undefined ? { state: undefined, verdict: null, observed: EMPTY_OBSERVED } : { state: readImaState(row.state), verdict: row.verdict, observed: readObserved(row.observed) };
  }

  async get(machineId: string, manager: EntityManager): Promise<MachineImaRecord | undefined> {
    const [row] = (await manager.query('SELECT state, verdict, observed FROM machine_ima_states WHERE machine_id = $1', [machineId])) as Row[];
    return row === undefined ? undefined : { state: readImaState(row.state), verdict: row.verdict, observed: readObserved(row.observed) };
  }

  /** The state alone (a start answers its nextEntry). */
  async stateOf(machineId: string, manager: EntityManager): Promise<ImaAttestationState | undefined> {
    const [row] = (await manager.query('SELECT state FROM machine_ima_states WHERE machine_id = $1', [machineId])) as { state: unknown }[];
    return row === undefined ? undefined : readImaState(row.state);
  }

  async save(machineId: string, record: { state: ImaAttestationState; verdict: RuntimeVerdict | null; observed: ObservedMeasurements }, at: Date, manager: EntityManager): Promise<void> {
    await manager.query(
      `INSERT INTO machine_ima_states (machine_id, state, verdict, observed, updated_at) VALUES ($1, $2::jsonb, $3::jsonb, $4::jsonb, $5)
       ON CONFLICT (machine_id) DO UPDATE SET state = EXCLUDED.state, verdict = EXCLUDED.verdict, observed = EXCLUDED.observed, updated_at = EXCLUDED.updated_at`,
      [machineId, JSON.stringify(record.state), record.verdict === null ? null : JSON.stringify(record.verdict), JSON.stringify(record.observed), at],
    );
  }
}
