import { Injectable } from '@nestjs/common';
import type { RuntimeFailureView, RuntimeVerdictView } from '@rackseal/api-contracts';
import { type ImaAttestationState, readImaState } from '@rackseal/ima';
import type { EntityManager } from 'typeorm';

/** One failed entry as a verdict keeps it: the entry's index, file, digest and the rule it broke. */
export type RuntimeFailure = RuntimeFailureView;

/** The last runtime verdict of a machine (what the operator API's evidence shows). */
export type RuntimeVerdict = RuntimeVerdictView;

/** The files and digests one round verified (covered by its quote, no violation). */
export interface ObservedRound {
  /** path → lowercase hex digests (file measurements: ima, ima-ng, ima-sig). */
  readonly digests: Record<string, string[]>;
  /** buffer name → lowercase hex digests (ima-buf). */
  readonly imaBuf: Record<string, string[]>;
  readonly count: number;
  /** What the digests take as policy JSON (each path, quoted, with its digest), counted when kept. */
  readonly bytes: number;
  /** The round stopped keeping digests at the limit: what the machine ran is not all here. */
  readonly truncated: boolean;
}

/** The measurements of the machine's current boot, all rounds merged (for `--from-machine`). */
export interface ObservedMeasurements extends ObservedRound {
  readonly bootTime: string | null;
}

export interface MachineImaRecord {
  /** undefined: none yet, or a stored state that does not read back (the round starts from zero). */
  readonly state: ImaAttestationState | undefined;
  readonly verdict: RuntimeVerdict | null;
}

interface Row {
  state: unknown;
  verdict: RuntimeVerdict | null;
}

/** Adds `from`'s digests to `into` (Maps: a measured path may be "__proto__"). */
function merge(into: Map<string, string[]>, from: Record<string, string[]>): void {
  for (const [path, digests] of Object.entries(from)) {
    const known = into.get(path) ?? [];
    into.set(path, [...known, ...digests.filter((d) => !known.includes(d))]);
  }
}

/**
 * The one owner of `machine_ima_states` and `machine_ima_observed` (migration 1765900000000): per
 * machine, libs/ima's incremental state, the last runtime verdict, and the measurements each round
 * verified this boot. Written in the transaction of the attestation that judged them, so the state
 * never runs ahead of the outcome. Observed rounds are appended (a round writes only its own new
 * entries, not the boot's whole list again).
 */
@Injectable()
export class MachineImaRepository {
  /** The machine's record, its row locked until the transaction ends (two finishes of one machine do not interleave). */
  async getForUpdate(machineId: string, manager: EntityManager): Promise<MachineImaRecord> {
    const [row] = (await manager.query('SELECT state, verdict FROM machine_ima_states WHERE machine_id = $1 FOR UPDATE', [machineId])) as Row[];
    return row === undefined ? { state: undefined, verdict: null } : { state: readImaState(row.state), verdict: row.verdict };
  }

  async get(machineId: string, manager: EntityManager): Promise<MachineImaRecord | undefined> {
    const [row] = (await manager.query('SELECT state, verdict FROM machine_ima_states WHERE machine_id = $1', [machineId])) as Row[];
    return row === undefined ? undefined : { state: readImaState(row.state), verdict: row.verdict };
  }

  /** The state alone (a start answers its nextEntry). */
  async stateOf(machineId: string, manager: EntityManager): Promise<ImaAttestationState | undefined> {
    const [row] = (await manager.query('SELECT state FROM machine_ima_states WHERE machine_id = $1', [machineId])) as { state: unknown }[];
    return row === undefined ? undefined : readImaState(row.state);
  }

  async save(machineId: string, record: { state: ImaAttestationState; verdict: RuntimeVerdict | null }, at: Date, manager: EntityManager): Promise<void> {
    await manager.query(
      `INSERT INTO machine_ima_states (machine_id, state, verdict, updated_at) VALUES ($1, $2::jsonb, $3::jsonb, $4)
       ON CONFLICT (machine_id) DO UPDATE SET state = EXCLUDED.state, verdict = EXCLUDED.verdict, updated_at = EXCLUDED.updated_at`,
      [machineId, JSON.stringify(record.state), record.verdict === null ? null : JSON.stringify(record.verdict), at],
    );
  }

  /**
   * Drops the observed rounds that do not continue into a round of `bootTime` from `firstEntry`:
   * every one when the round starts from entry 0, else those of another boot. Answers how many
   * digests the remaining rounds keep, and whether one of them was truncated.
   */
  async keepObservedFor(machineId: string, bootTime: string, firstEntry: number, manager: EntityManager): Promise<{ count: number; bytes: number; truncated: boolean }> {
    await manager.query('DELETE FROM machine_ima_observed WHERE machine_id = $1 AND ($2::boolean OR boot_time <> $3)', [machineId, firstEntry === 0, bootTime]);
    const [row] = (await manager.query(
      'SELECT coalesce(sum(count), 0)::int AS count, coalesce(sum(bytes), 0)::float8 AS bytes, coalesce(bool_or(truncated), false) AS truncated FROM machine_ima_observed WHERE machine_id = $1',
      [machineId],
    )) as { count: number; bytes: number; truncated: boolean }[];
    return row!;
  }

  async appendObserved(machineId: string, bootTime: string, firstEntry: number, round: ObservedRound, manager: EntityManager): Promise<void> {
    await manager.query(
      `INSERT INTO machine_ima_observed (machine_id, first_entry, boot_time, digests, ima_buf, count, bytes, truncated) VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6, $7, $8)
       ON CONFLICT (machine_id, first_entry) DO UPDATE SET boot_time = EXCLUDED.boot_time, digests = EXCLUDED.digests, ima_buf = EXCLUDED.ima_buf, count = EXCLUDED.count, bytes = EXCLUDED.bytes, truncated = EXCLUDED.truncated`,
      [machineId, firstEntry, bootTime, JSON.stringify(round.digests), JSON.stringify(round.imaBuf), round.count, round.bytes, round.truncated],
    );
  }

  /** Every round of the machine's current boot merged, or undefined when none was kept. */
  async observedOf(machineId: string, manager: EntityManager): Promise<ObservedMeasurements | undefined> {
    const rows = (await manager.query('SELECT boot_time, digests, ima_buf, count, bytes::float8 AS bytes, truncated FROM machine_ima_observed WHERE machine_id = $1 ORDER BY first_entry', [machineId])) as {
      boot_time: string;
      digests: Record<string, string[]>;
      ima_buf: Record<string, string[]>;
      count: number;
      bytes: number;
      truncated: boolean;
    }[];
    if (rows.length === 0) {
      return undefined;
    }
    const digests = new Map<string, string[]>();
    const imaBuf = new Map<string, string[]>();
    for (const row of rows) {
      merge(digests, row.digests);
      merge(imaBuf, row.ima_buf);
    }
    const count = [...digests.values(), ...imaBuf.values()].reduce((n, d) => n + d.length, 0);
    const bytes = rows.reduce((n, r) => n + r.bytes, 0);
    return { bootTime: rows.at(-1)!.boot_time, digests: Object.fromEntries(digests), imaBuf: Object.fromEntries(imaBuf), count, bytes, truncated: rows.some((r) => r.truncated) };
  }
}
