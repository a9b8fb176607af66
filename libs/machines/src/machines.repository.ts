import { Injectable } from '@nestjs/common';
import { DataSource, type EntityManager } from 'typeorm';
import type {
  GroupMachineCounts,
  LandedCounts,
  Machine,
  MachineFailure,
  MachineListQuery,
  MachineRef,
  MachineStateCounts,
  MachineTransition,
  OverdueCounts,
  RevokeRequest,
  RevokeResult,
  StagedChangeCounts,
  TransitionRequest,
} from './machine';
import { MachineNotFoundError, MachineStateConflictError, MachineTransitionError, MachineTransitionReasonError } from './machine-errors';
import { normalizeFailure } from './machine-failure';
import { isLegalTransition, MACHINE_STATES, type MachineState } from './machine-state';

/** The longest transition reason kept (the CHECK in migration 1764200000000). */
export const MAX_TRANSITION_REASON = 1000;

interface MachineRow {
  id: string;
  serial: string;
  asset_tag: string | null;
  hostname: string | null;
  group_name: string | null;
  ek_pub_hash: string;
  ek_cert_fingerprint: string | null;
  state: MachineState;
  imported_at: Date;
  updated_at: Date;
  import_id: string | null;
  first_attested_at: Date | null;
  last_attested_at: Date | null;
  last_failure: StoredFailure | null;
}

/** `machines.last_failure` as jsonb gives it back: the time as ISO 8601 text. */
interface StoredFailure {
  at: string;
  code: string;
  reason: string;
  explanation: string[];
  registrationId?: string;
}

interface TransitionRow {
  seq: string;
  machine_id: string;
  from_state: MachineState;
  to_state: MachineState;
  reason: string;
  actor: string;
  at: Date;
}

const MACHINE_COLUMNS =
  'id, serial, asset_tag, hostname, group_name, ek_pub_hash, ek_cert_fingerprint, state, imported_at, updated_at, import_id, first_attested_at, last_attested_at, last_failure';

/**
 * "Not attested since $n": never attested or last attested before it, revoked machines left out. The
 * same text in list and count so both use the partial index machines_not_attested (migration 1764400000000).
 */
const NOT_ATTESTED_SINCE = (param: string): string => `state <> 'revoked' AND (last_attested_at IS NULL OR last_attested_at < ${param})`;

/**
 * "Overdue": not revoked, and never attested or last attested longer ago than the machine's group's
 * interval at `now`, the fleet default (in seconds) for a group without its own. Over `machines m`
 * LEFT JOIN `group_attestation_intervals g` on the group (INTERVALS_JOIN).
 */
const OVERDUE = (now: string, fleetSeconds: string): string =>
  `m.state <> 'revoked' AND (m.last_attested_at IS NULL OR m.last_attested_at < ${now}::timestamptz - make_interval(secs => COALESCE(g.interval_seconds, ${fleetSeconds}::float8)))`;
const INTERVALS_JOIN = 'LEFT JOIN group_attestation_intervals g ON g.group_name = m.group_name';

/**
 * "Failing": not revoked, and quarantined or with a refused attestation newer than its last
 * successful one (what the dashboard's machine page calls failing). Over `machines` unaliased.
 */
const FAILING = `state <> 'revoked' AND (state = 'quarantined' OR (last_failure IS NOT NULL AND (last_attested_at IS NULL OR (last_failure->>'at')::timestamptz > last_attested_at)))`;

/** How many times revoke re-reads a machine that another transaction moved meanwhile. */
const REVOKE_ATTEMPTS = 5;

interface StateCount {
  state: MachineState;
  n: number;
}

function countsOf(rows: readonly StateCount[]): MachineStateCounts {
  const counts = Object.fromEntries(MACHINE_STATES.map((state) => [state, 0])) as Record<MachineState, number>;
  for (const row of rows) {
    counts[row.state] = row.n;
  }
  return counts;
}

/** The trimmed reason, or MachineTransitionReasonError. */
function checkReason(text: string): string {
  const reason = text.trim();
  if (reason.length === 0 || reason.length > MAX_TRANSITION_REASON) {
    throw new MachineTransitionReasonError(`a transition reason must be 1-${MAX_TRANSITION_REASON} characters`);
  }
  return reason;
}

/** A staging table is named by the caller: an SQL identifier, never text from a request. */
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

function stagingTable(name: string): string {
  if (!IDENTIFIER.test(name)) {
    throw new Error(`not a staging table name: ${JSON.stringify(name)}`);
  }
  return name;
}

function toMachine(r: MachineRow): Machine {
  return {
    id: r.id,
    serial: r.serial,
    assetTag: r.asset_tag,
    hostname: r.hostname,
    group: r.group_name,
    ekPubHash: r.ek_pub_hash,
    ekCertFingerprint: r.ek_cert_fingerprint,
    state: r.state,
    importedAt: r.imported_at,
    updatedAt: r.updated_at,
    importId: r.import_id,
    firstAttestedAt: r.first_attested_at,
    lastAttestedAt: r.last_attested_at,
    lastFailure: r.last_failure === null ? null : { ...r.last_failure, at: new Date(r.last_failure.at) },
  };
}

function toTransition(r: TransitionRow): MachineTransition {
  return { seq: Number(r.seq), machineId: r.machine_id, from: r.from_state, to: r.to_state, reason: r.reason, actor: r.actor, at: r.at };
}

/**
 * The one owner of the `machines` and `machine_transitions` tables: every statement that reads or
 * writes them is here. Methods that take an EntityManager run inside the caller's transaction (so a
 * change commits with its audit record); the others use their own connection.
 *
 * Raw SQL on purpose: the bulk import lands 100k rows in one set-based statement (bench/README.md
 * "inventory-import"), and a state change is one conditional UPDATE.
 */
@Injectable()
export class MachinesRepository {
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Machines ordered by serial, after a serial (keyset paging), optionally only those of one state,
   * one group, not attested since an instant, or overdue against their group's interval. Only the
   * filters given become conditions, so the planner sees each query as it is (the "not attested
   * since" filter uses its partial index; the interval table is joined only for `overdue`).
   * Inside a transaction, pass its manager: a second pool connection taken while the transaction
   * holds one waits forever on a pool that the concurrent callers have exhausted.
   */
  async list(query: MachineListQuery, manager?: EntityManager): Promise<Machine[]> {
    const conditions: string[] = [];
    const params: unknown[] = [];
    const param = (value: unknown): string => {
      params.push(value);
      return `$${params.length}`;
    };
    if (query.id !== undefined) {
      conditions.push(`m.id = ${param(query.id)}`);
    }
    if (query.state !== undefined) {
      conditions.push(`m.state = ${param(query.state)}`);
    }
    if (query.group !== undefined) {
      conditions.push(`m.group_name = ${param(query.group)}`);
    }
    if (query.notAttestedSince !== undefined) {
      conditions.push(NOT_ATTESTED_SINCE(param(query.notAttestedSince)));
    }
    if (query.overdue !== undefined) {
      conditions.push(OVERDUE(param(query.overdue.at), param(query.overdue.fleetIntervalMs / 1000)));
    }
    if (query.after !== undefined) {
      conditions.push(`m.serial > ${param(query.after)}`);
    }
    const limit = param(query.limit);
    const rows = (await (manager ?? this.dataSource).query(
      `SELECT ${MACHINE_COLUMNS.split(', ').map((c) => `m.${c}`).join(', ')} FROM machines m ${query.overdue === undefined ? '' : INTERVALS_JOIN}
       ${conditions.length === 0 ? '' : `WHERE ${conditions.join(' AND ')}`} ORDER BY m.serial LIMIT ${limit}${query.lockForShare === true && query.overdue === undefined ? ' FOR SHARE OF m' : ''}`,
      params,
    )) as MachineRow[];
    return rows.map(toMachine);
  }

  /** The machine an operator named by id or serial (parseMachineRef). */
  async findByRef(ref: MachineRef, manager?: EntityManager): Promise<Machine | undefined> {
    if ('id' in ref) {
      return this.findById(ref.id, manager);
    }
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${MACHINE_COLUMNS} FROM machines WHERE serial = $1`, [ref.serial])) as MachineRow[];
    return row === undefined ? undefined : toMachine(row);
  }

  async findById(id: string, manager?: EntityManager): Promise<Machine | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${MACHINE_COLUMNS} FROM machines WHERE id = $1`, [id])) as MachineRow[];
    return row === undefined ? undefined : toMachine(row);
  }

  /** The machines of `ids` that exist, in no particular order (one statement for a batch of lookups). */
  async findByIds(ids: readonly string[], manager?: EntityManager): Promise<Machine[]> {
    if (ids.length === 0) {
      return [];
    }
    const rows = (await (manager ?? this.dataSource).query(`SELECT ${MACHINE_COLUMNS} FROM machines WHERE id = ANY($1::uuid[])`, [[...new Set(ids)]])) as MachineRow[];
    return rows.map(toMachine);
  }

  /** The machine whose TPM has this EK (lowercase hex SHA-256 of the EK public key, docs/architecture.md §3). */
  /** The EK certificate (DER) the inventory holds for the machine; undefined for an ek_pub_hash-only row. */
  async ekCertificateOf(machineId: string, manager?: EntityManager): Promise<Buffer | undefined> {
    const [row] = (await (manager ?? this.dataSource).query('SELECT ek_cert FROM machines WHERE id = $1', [machineId])) as { ek_cert: Buffer | null }[];
    return row?.ek_cert ?? undefined;
  }

  async findByEkPubHash(ekPubHash: string, manager?: EntityManager): Promise<Machine | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${MACHINE_COLUMNS} FROM machines WHERE ek_pub_hash = $1`, [
      ekPubHash,
    ])) as MachineRow[];
    return row === undefined ? undefined : toMachine(row);
  }

  /**
   * Another machine, not revoked, with this machine's hostname (the inventory stores hostnames
   * lowercase and does not make them unique): a certificate naming the hostname would name both.
   * Revoked machines are left out, so a replaced machine's successor may take its name.
   */
  async otherWithHostname(machine: Machine, manager?: EntityManager): Promise<Machine | undefined> {
    if (machine.hostname === null) {
      return undefined;
    }
    const [row] = (await (manager ?? this.dataSource).query(
      `SELECT ${MACHINE_COLUMNS} FROM machines WHERE hostname = $1 AND id <> $2 AND state <> 'revoked' ORDER BY serial LIMIT 1`,
      [machine.hostname.toLowerCase(), machine.id],
    )) as MachineRow[];
    return row === undefined ? undefined : toMachine(row);
  }

  /**
   * Moves a machine from `request.from` to `request.to` and records the transition, in one statement:
   * `UPDATE … WHERE state = from` takes the row lock, and a concurrent transition from the same state
   * re-checks the WHERE after the winner commits and matches nothing (PostgreSQL READ COMMITTED), so
   * two workers can never both apply one change. The loser gets MachineStateConflictError.
   */
  async transition(request: TransitionRequest, at: Date, manager?: EntityManager): Promise<Machine> {
    if (!isLegalTransition(request.from, request.to)) {
      throw new MachineTransitionError(request.from, request.to);
    }
    const reason = checkReason(request.reason);
    const db = manager ?? this.dataSource;
    const [row] = (await db.query(
      `WITH moved AS (
         UPDATE machines SET state = $3, updated_at = $4,
           -- A quarantine ends an attempt: an operator's pending re-attestation request was answered by
           -- it (GET /node/v1/self would otherwise ask the quarantined machine at every question).
           reattest_requested_at = CASE WHEN $3 = 'quarantined' THEN NULL ELSE reattest_requested_at END
         WHERE id = $1 AND state = $2
         RETURNING ${MACHINE_COLUMNS}),
       recorded AS (
         INSERT INTO machine_transitions (machine_id, from_state, to_state, reason, actor, at)
         SELECT id, $2, $3, $5, $6, $4 FROM moved)
       SELECT * FROM moved`,
      [request.machineId, request.from, request.to, at, reason, request.actor],
    )) as MachineRow[];
    if (row !== undefined) {
      return toMachine(row);
    }
    const current = await this.findById(request.machineId, manager);
    if (current === undefined) {
      throw new MachineNotFoundError(request.machineId);
    }
    throw new MachineStateConflictError(request.machineId, request.from, current.state, request.to);
  }

  /** A machine's transitions, oldest first. */
  async history(machineId: string, manager?: EntityManager): Promise<MachineTransition[]> {
    const rows = (await (manager ?? this.dataSource).query(
      'SELECT seq, machine_id, from_state, to_state, reason, actor, at FROM machine_transitions WHERE machine_id = $1 ORDER BY seq',
      [machineId],
    )) as TransitionRow[];
    return rows.map(toTransition);
  }

  /**
   * Revokes a machine from whatever state it is in (every state but revoked has an edge to revoked,
   * machine-state.ts), through transition() so the history row is written by the same statement.
   * Idempotent: a machine already revoked is answered `changed: false` and nothing is written, so an
   * operator's retried or repeated revoke is harmless and the first revocation's reason stands. When
   * another transaction moves the machine between the read and the UPDATE (an attestation finishing),
   * the state is read again; a reason is refused before anything is read.
   */
  async revoke(machineId: string, request: RevokeRequest, at: Date, manager?: EntityManager): Promise<RevokeResult> {
    checkReason(request.reason);
    for (let attempt = 1; ; attempt += 1) {
      const current = await this.findById(machineId, manager);
      if (current === undefined) {
        throw new MachineNotFoundError(machineId);
      }
      if (current.state === 'revoked') {
        return { changed: false, machine: current };
      }
      try {
        const machine = await this.transition({ machineId, from: current.state, to: 'revoked', reason: request.reason, actor: request.actor }, at, manager);
        return { changed: true, machine, from: current.state };
      } catch (error) {
        if (!(error instanceof MachineStateConflictError) || attempt >= REVOKE_ATTEMPTS) {
          throw error;
        }
      }
    }
  }

  /**
   * An operator's request that the machine attest again (cleared by recordAttested); a pending
   * request keeps its first time. The stored time, undefined when there is no such machine.
   */
  async requestReattest(machineId: string, at: Date, manager?: EntityManager): Promise<Date | undefined> {
    const [rows] = (await (manager ?? this.dataSource).query(
      'UPDATE machines SET reattest_requested_at = COALESCE(reattest_requested_at, $2) WHERE id = $1 RETURNING reattest_requested_at',
      [machineId, at],
    )) as [{ reattest_requested_at: Date }[], number];
    return rows[0]?.reattest_requested_at;
  }

  /** When an operator asked the machine to attest again, null when no request is pending. */
  async reattestRequestedAt(machineId: string, manager?: EntityManager): Promise<Date | null> {
    const [row] = (await (manager ?? this.dataSource).query('SELECT reattest_requested_at FROM machines WHERE id = $1', [machineId])) as { reattest_requested_at: Date | null }[];
    return row?.reattest_requested_at ?? null;
  }

  /**
   * A successful attestation at `at`: the last attestation time, and the first one if there was none;
   * an operator's pending re-attestation request is answered by it.
   * Call it in the attestation's transaction, with the transition to attested. `last_attested_at`
   * never goes back (two replicas' clocks may differ slightly): GREATEST keeps the later one.
   */
  async recordAttested(machineId: string, at: Date, manager?: EntityManager): Promise<Machine> {
    const [rows] = (await (manager ?? this.dataSource).query(
      `UPDATE machines SET first_attested_at = COALESCE(first_attested_at, $2), last_attested_at = GREATEST(last_attested_at, $2), updated_at = $2,
         reattest_requested_at = NULL
       WHERE id = $1 RETURNING ${MACHINE_COLUMNS}`,
      [machineId, at],
    )) as [MachineRow[], number];
    return this.updated(machineId, rows);
  }

  /**
   * A refused attestation: kept as the machine's last failure (replacing the previous one) with its
   * explanation lines, made printable and bounded by normalizeFailure. Call it in the refusal's
   * transaction, with the transition to quarantined when there is one.
   */
  async recordFailure(machineId: string, failure: MachineFailure, manager?: EntityManager): Promise<Machine> {
    const stored = normalizeFailure(failure);
    const [rows] = (await (manager ?? this.dataSource).query(
      `UPDATE machines SET last_failure = $2::jsonb, updated_at = $3 WHERE id = $1 RETURNING ${MACHINE_COLUMNS}`,
      [machineId, JSON.stringify({ ...stored, at: stored.at.toISOString() }), stored.at],
    )) as [MachineRow[], number];
    return this.updated(machineId, rows);
  }

  /** Machines per state, every state present (the /metrics gauge). */
  async countByState(): Promise<MachineStateCounts> {
    return countsOf((await this.dataSource.query('SELECT state, count(*)::int AS n FROM machines GROUP BY state')) as StateCount[]);
  }

  /**
   * Per group (machines without one left out), its machines per state and how many of them are
   * failing (FAILING): the dashboard's groups list (issue 16), or one group's with `group`. One pass.
   */
  async countByGroup(group?: string): Promise<GroupMachineCounts[]> {
    const rows = (await this.dataSource.query(
      `SELECT group_name, state, count(*)::int AS n, count(*) FILTER (WHERE ${FAILING})::int AS failing FROM machines
       WHERE ${group === undefined ? 'group_name IS NOT NULL' : 'group_name = $1'} GROUP BY group_name, state ORDER BY group_name`,
      group === undefined ? [] : [group],
    )) as (StateCount & { group_name: string; failing: number })[];
    const byGroup = new Map<string, { rows: StateCount[]; failing: number }>();
    for (const row of rows) {
      const entry = byGroup.get(row.group_name) ?? { rows: [], failing: 0 };
      entry.rows.push(row);
      entry.failing += row.failing;
      byGroup.set(row.group_name, entry);
    }
    return [...byGroup].map(([name, entry]) => ({ group: name, byState: countsOf(entry.rows), failing: entry.failing }));
  }

  /** The group's failing machines (FAILING), ordered by serial, at most `limit`. */
  async failingOf(group: string, limit: number, manager?: EntityManager): Promise<Machine[]> {
    const rows = (await (manager ?? this.dataSource).query(`SELECT ${MACHINE_COLUMNS} FROM machines WHERE group_name = $1 AND ${FAILING} ORDER BY serial LIMIT $2`, [
      group,
      limit,
    ])) as MachineRow[];
    return rows.map(toMachine);
  }

  /** Per state, the machines not attested since `since` (revoked: always 0): the fleet liveness gauge. */
  async countNotAttestedSince(since: Date): Promise<MachineStateCounts> {
    return countsOf(
      (await this.dataSource.query(`SELECT state, count(*)::int AS n FROM machines WHERE ${NOT_ATTESTED_SINCE('$1')} GROUP BY state`, [since])) as StateCount[],
    );
  }

  /**
   * The liveness gauges at `at` (issue 12 item 7): the overdue machines (see OVERDUE) per state, and
   * per group with the group's own interval (null: the fleet default applies). The groups listed are
   * those of machines that are not revoked and those with an interval of their own; `null` is the
   * machines without a group.
   */
  async countOverdue(at: Date, fleetIntervalMs: number): Promise<OverdueCounts> {
    // One pass over the machines that are not revoked (every group with one appears, 0 overdue included),
    // then the groups with an interval of their own and no such machine from the small table.
    const [rows, intervals] = await Promise.all([
      this.dataSource.query(
        `SELECT m.group_name, g.interval_seconds, m.state, count(*) FILTER (WHERE ${OVERDUE('$1', '$2')})::int AS n
         FROM machines m ${INTERVALS_JOIN} WHERE m.state <> 'revoked' GROUP BY m.group_name, g.interval_seconds, m.state`,
        [at, fleetIntervalMs / 1000],
      ) as Promise<{ group_name: string | null; interval_seconds: number | null; state: MachineState; n: number }[]>,
      this.dataSource.query('SELECT group_name, interval_seconds FROM group_attestation_intervals') as Promise<{ group_name: string; interval_seconds: number }[]>,
    ]);
    const byState = new Map<MachineState, number>();
    const byGroup = new Map<string | null, { intervalSeconds: number | null; overdue: number }>(intervals.map((g) => [g.group_name, { intervalSeconds: g.interval_seconds, overdue: 0 }]));
    for (const row of rows) {
      byState.set(row.state, (byState.get(row.state) ?? 0) + row.n);
      const group = byGroup.get(row.group_name) ?? { intervalSeconds: row.interval_seconds, overdue: 0 };
      byGroup.set(row.group_name, { ...group, overdue: group.overdue + row.n });
    }
    // Ordered by name, machines without a group first: a stable exposition.
    const order = (a: string | null, b: string | null): number => (a === b ? 0 : a === null ? -1 : b === null ? 1 : a < b ? -1 : 1);
    return {
      byState: countsOf([...byState].map(([state, n]) => ({ state, n }))),
      byGroup: [...byGroup].sort(([a], [b]) => order(a, b)).map(([group, g]) => ({ group, ...g })),
    };
  }

  /** An UPDATE … RETURNING's row (pg gives [rows, count] for an UPDATE), or MachineNotFoundError. */
  private updated(machineId: string, rows: MachineRow[]): Machine {
    const row = rows[0];
    if (row === undefined) {
      throw new MachineNotFoundError(machineId);
    }
    return toMachine(row);
  }

  // ── The inventory import's bulk path (libs/inventory, docs/architecture.md §4.2) ────────────────
  // The staging table is the importer's temporary table with at least the columns serial, asset_tag,
  // hostname, group_name, ek_pub_hash, ek_cert, ek_cert_fingerprint, problem, message; a row with
  // problem IS NULL is valid. These statements stay set-based: one statement for all rows.

  /** Serializes imports: the conflict checks and the landing that follow see the same machines. */
  async lockForImport(manager: EntityManager): Promise<void> {
    await manager.query('LOCK TABLE machines IN SHARE ROW EXCLUSIVE MODE');
  }

  /** Marks staged rows whose EK or serial is already bound to another machine. */
  async markStagedConflicts(manager: EntityManager, staging: string): Promise<void> {
    const t = stagingTable(staging);
    await manager.query(`
      UPDATE ${t} r SET problem = 'ek-bound-to-other-serial',
        message = 'this EK (' || r.ek_pub_hash || ') is already bound to machine serial ' || m.serial
      FROM machines m WHERE r.problem IS NULL AND m.ek_pub_hash = r.ek_pub_hash AND m.serial <> r.serial`);
    await manager.query(`
      UPDATE ${t} r SET problem = 'serial-bound-to-other-ek',
        message = 'serial is already bound to another EK (' || m.ek_pub_hash || '); a replaced TPM needs the machine revoked first'
      FROM machines m WHERE r.problem IS NULL AND m.serial = r.serial AND m.ek_pub_hash <> r.ek_pub_hash`);
  }

  /** What landing the valid staged rows would do, for a dry run (which writes nothing). */
  async countStagedChanges(manager: EntityManager, staging: string): Promise<StagedChangeCounts> {
    const [counts] = (await manager.query(`
      SELECT count(*) FILTER (WHERE m.id IS NULL)::int AS created,
             count(*) FILTER (WHERE m.id IS NOT NULL AND NOT (${UNCHANGED}))::int AS updated,
             count(*) FILTER (WHERE m.id IS NOT NULL AND (${UNCHANGED}))::int AS unchanged
      FROM ${stagingTable(staging)} r LEFT JOIN machines m ON m.serial = r.serial
      WHERE r.problem IS NULL`)) as [StagedChangeCounts];
    return counts;
  }

  /**
   * Lands the valid staged rows as machines in state `imported`: one INSERT … ON CONFLICT (serial)
   * DO UPDATE … WHERE something changed. It reports what it did, so no separate counting pass over
   * the staged rows: a row it created carries this import's time as imported_at, an update keeps the
   * machine's first import time (imports hold lockForImport in turn and each reads the clock after
   * its checks, so an earlier import's time is always older), and unchanged rows are skipped by the
   * WHERE. The state of an existing machine is never changed here: only transition() does that.
   */
  async landStagedRows(manager: EntityManager, staging: string, importId: string, at: Date): Promise<LandedCounts> {
    const [counts] = (await manager.query(
      `WITH landed AS (
         INSERT INTO machines (id, serial, asset_tag, hostname, group_name, ek_pub_hash, ek_cert, ek_cert_fingerprint, state, imported_at, updated_at, import_id)
         SELECT rackseal_uuid_v7(), serial, asset_tag, hostname, group_name, ek_pub_hash, ek_cert, ek_cert_fingerprint, 'imported', $1, $1, $2
         FROM ${stagingTable(staging)} WHERE problem IS NULL
         ON CONFLICT (serial) DO UPDATE SET
           asset_tag = EXCLUDED.asset_tag, hostname = EXCLUDED.hostname, group_name = EXCLUDED.group_name,
           ek_cert = COALESCE(EXCLUDED.ek_cert, machines.ek_cert),
           ek_cert_fingerprint = COALESCE(EXCLUDED.ek_cert_fingerprint, machines.ek_cert_fingerprint),
           updated_at = EXCLUDED.updated_at, import_id = EXCLUDED.import_id
         WHERE (machines.asset_tag, machines.hostname, machines.group_name) IS DISTINCT FROM (EXCLUDED.asset_tag, EXCLUDED.hostname, EXCLUDED.group_name)
            OR (EXCLUDED.ek_cert IS NOT NULL AND machines.ek_cert IS DISTINCT FROM EXCLUDED.ek_cert)
         RETURNING imported_at = $1 AS created)
       SELECT count(*) FILTER (WHERE created)::int AS created, count(*) FILTER (WHERE NOT created)::int AS updated FROM landed`,
      [at, importId],
    )) as [LandedCounts];
    return counts;
  }
}

/** A staged row equal to its machine: nothing to write. */
const UNCHANGED = `(m.asset_tag, m.hostname, m.group_name) IS NOT DISTINCT FROM (r.asset_tag, r.hostname, r.group_name)
  AND (r.ek_cert IS NULL OR m.ek_cert = r.ek_cert)`;
