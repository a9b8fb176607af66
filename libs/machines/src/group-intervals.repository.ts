import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';

/** A group's own attestation interval and who set it (a row of `group_attestation_intervals`). */
export interface StoredGroupInterval {
  readonly group: string;
  readonly intervalSeconds: number;
  readonly updatedAt: Date;
  readonly updatedBy: string;
}

interface IntervalRow {
  group_name: string;
  interval_seconds: number;
  updated_at: Date;
  updated_by: string;
}

const toStored = (r: IntervalRow): StoredGroupInterval => ({ group: r.group_name, intervalSeconds: r.interval_seconds, updatedAt: r.updated_at, updatedBy: r.updated_by });

/**
 * The one owner of `group_attestation_intervals` (migration 1764800000000): each machine group's own
 * attestation interval. A group without a row is held to the fleet default; MachinesRepository's
 * liveness queries join this table for that COALESCE (the same library, so the SQL stays here).
 */
@Injectable()
export class GroupIntervalsRepository {
  constructor(private readonly dataSource: DataSource) {}

  async get(group: string, manager?: EntityManager): Promise<StoredGroupInterval | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(
      'SELECT group_name, interval_seconds, updated_at, updated_by FROM group_attestation_intervals WHERE group_name = $1',
      [group],
    )) as IntervalRow[];
    return row === undefined ? undefined : toStored(row);
  }

  /** Every group's own interval (a small table: one row per group that has one). */
  async list(manager?: EntityManager): Promise<StoredGroupInterval[]> {
    const rows = (await (manager ?? this.dataSource).query('SELECT group_name, interval_seconds, updated_at, updated_by FROM group_attestation_intervals ORDER BY group_name')) as IntervalRow[];
    return rows.map(toStored);
  }

  async put(group: string, intervalSeconds: number, by: string, at: Date, manager?: EntityManager): Promise<StoredGroupInterval> {
    const [row] = (await (manager ?? this.dataSource).query(
      `INSERT INTO group_attestation_intervals (group_name, interval_seconds, updated_at, updated_by) VALUES ($1, $2, $3, $4)
       ON CONFLICT (group_name) DO UPDATE SET interval_seconds = EXCLUDED.interval_seconds, updated_at = EXCLUDED.updated_at, updated_by = EXCLUDED.updated_by
       RETURNING group_name, interval_seconds, updated_at, updated_by`,
      [group, intervalSeconds, at, by],
    )) as IntervalRow[];
    return toStored(row!);
  }

  /** Removes the group's own interval (back to the fleet default); the removed row, undefined when there was none. */
  async remove(group: string, manager?: EntityManager): Promise<StoredGroupInterval | undefined> {
    const [rows] = (await (manager ?? this.dataSource).query(
      'DELETE FROM group_attestation_intervals WHERE group_name = $1 RETURNING group_name, interval_seconds, updated_at, updated_by',
      [group],
    )) as [IntervalRow[], number];
    return rows[0] === undefined ? undefined : toStored(rows[0]);
  }

  /**
   * Serialises changes of one group's interval (a change reads the previous value for its audit
   * record; a group without a row has nothing to lock with FOR UPDATE). Transaction-scoped.
   */
  async lock(group: string, manager: EntityManager): Promise<void> {
    await manager.query("SELECT pg_advisory_xact_lock(hashtextextended('group_attestation_intervals:' || $1, 0))", [group]);
  }
}
