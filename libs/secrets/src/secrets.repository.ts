import { Injectable } from '@nestjs/common';
import type { SecretBinding, SecretKind, SecretParameters } from '@rackseal/api-contracts';
import { DataSource, type EntityManager } from 'typeorm';

export interface StoredSecret {
  readonly id: string;
  readonly name: string;
  readonly kind: SecretKind;
  readonly targetGroup: string | null;
  readonly targetMachineId: string | null;
  readonly binding: SecretBinding;
  readonly parameters: SecretParameters;
  readonly createdAt: Date;
  readonly createdBy: string;
  /** Set when a revoked machine held this shared uploaded value: the operator must upload a new one. */
  readonly rotationRequiredAt?: Date | null;
  readonly rotationRequiredReason?: string | null;
}

/** How an opaque version's value came to be; null for per-machine kinds (and opaque versions older than the column). */
export type SecretValueOrigin = 'generated' | 'uploaded';

export interface StoredSecretVersion {
  readonly id: string;
  readonly secretId: string;
  readonly version: number;
  /** An opaque secret's value, sealed with `secret-version:<id>`; null for per-machine kinds. */
  readonly valueSealed: Buffer | null;
  readonly valueOrigin: SecretValueOrigin | null;
  readonly createdAt: Date;
  readonly createdBy: string;
  /** When every delivery of a newer version was acked: never delivered again. */
  readonly retiredAt: Date | null;
}

/** Why a secret is due for a new version on its schedule. */
export type RotationReason = 'renew-before' | 'rotate-every';

/** A secret whose latest version is due, and that version's number (the scheduled rotation is conditional on it). */
export interface DueSecret {
  readonly secretId: string;
  readonly name: string;
  readonly latestVersion: number;
  readonly reason: RotationReason;
}

export interface StoredSecretMaterial {
  readonly id: string;
  readonly versionId: string;
  readonly machineId: string;
  /** The private key (PKCS#8 DER) or random bytes, sealed with `secret-material:<id>`. */
  readonly materialSealed: Buffer;
  readonly certificatePem: string | null;
  readonly certificateSerial: string | null;
  readonly notAfter: Date | null;
  readonly kubeletConf: string | null;
  readonly createdAt: Date;
}

/** A material row as listed: without its blob, with the machine's serial. */
export interface ListedMaterial {
  readonly machineId: string;
  readonly serial: string;
  readonly createdAt: Date;
  readonly certificateSerial: string | null;
  readonly notAfter: Date | null;
}

const SECRET_COLUMNS = 'id, name, kind, target_group, target_machine_id, binding, parameters, created_at, created_by';
const SECRET_READ_COLUMNS = `${SECRET_COLUMNS}, rotation_required_at, rotation_required_reason`;
const VERSION_INSERT_COLUMNS = 'id, secret_id, version, value_sealed, value_origin, created_at, created_by';
const VERSION_COLUMNS = `${VERSION_INSERT_COLUMNS}, retired_at`;
const MATERIAL_COLUMNS = 'id, version_id, machine_id, material_sealed, certificate_pem, certificate_serial, not_after, kubelet_conf, created_at';

interface SecretRow {
  id: string;
  name: string;
  kind: SecretKind;
  target_group: string | null;
  target_machine_id: string | null;
  binding: SecretBinding;
  parameters: SecretParameters;
  created_at: Date;
  created_by: string;
  rotation_required_at?: Date | null;
  rotation_required_reason?: string | null;
}

interface VersionRow {
  id: string;
  secret_id: string;
  version: number;
  value_sealed: Buffer | null;
  value_origin: SecretValueOrigin | null;
  created_at: Date;
  created_by: string;
  retired_at: Date | null;
}

interface MaterialRow {
  id: string;
  version_id: string;
  machine_id: string;
  material_sealed: Buffer;
  certificate_pem: string | null;
  certificate_serial: string | null;
  not_after: Date | null;
  kubelet_conf: string | null;
  created_at: Date;
}

/** `secrets`, `secret_versions` and `secret_materials` (migration 1765200000000). */
@Injectable()
export class SecretsRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Inserts a definition unless the name is taken: false when it is (the unique name decides between racers). */
  async insertSecret(s: StoredSecret, manager: EntityManager): Promise<boolean> {
    const rows = (await manager.query(
      `INSERT INTO secrets (${SECRET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (name) DO NOTHING RETURNING id`,
      [s.id, s.name, s.kind, s.targetGroup, s.targetMachineId, s.binding, JSON.stringify(s.parameters), s.createdAt, s.createdBy],
    )) as unknown[];
    return rows.length === 1;
  }

  async findByName(name: string, manager?: EntityManager, lock = false): Promise<StoredSecret | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${SECRET_READ_COLUMNS} FROM secrets WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, [name])) as SecretRow[];
    return row === undefined ? undefined : toSecret(row);
  }

  async findById(id: string, manager?: EntityManager, lock = false): Promise<StoredSecret | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${SECRET_READ_COLUMNS} FROM secrets WHERE id = $1${lock ? ' FOR UPDATE' : ''}`, [id])) as SecretRow[];
    return row === undefined ? undefined : toSecret(row);
  }

  /** Secrets ordered by name after `after` (keyset paging). */
  async list(after: string | undefined, limit: number): Promise<StoredSecret[]> {
    const rows = (await this.dataSource.query(`SELECT ${SECRET_READ_COLUMNS} FROM secrets WHERE ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2`, [
      after ?? null,
      limit,
    ])) as SecretRow[];
    return rows.map(toSecret);
  }

  async insertVersion(v: StoredSecretVersion, manager: EntityManager): Promise<void> {
    await manager.query(`INSERT INTO secret_versions (${VERSION_INSERT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)`, [
      v.id,
      v.secretId,
      v.version,
      v.valueSealed,
      v.valueOrigin,
      v.createdAt,
      v.createdBy,
    ]);
  }

  async findVersion(id: string, manager?: EntityManager): Promise<StoredSecretVersion | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${VERSION_COLUMNS} FROM secret_versions WHERE id = $1`, [id])) as VersionRow[];
    return row === undefined ? undefined : toVersion(row);
  }

  /**
   * The latest version of every secret that targets this machine or its group, with its secret:
   * what a machine that has just attested must get (issue 14's deliveries).
   */
  async latestVersionsTargeting(machineId: string, group: string | null, manager?: EntityManager): Promise<{ secret: StoredSecret; version: StoredSecretVersion }[]> {
    const rows = (await (manager ?? this.dataSource).query(
      `SELECT DISTINCT ON (s.id) ${SECRET_READ_COLUMNS.split(', ').map((c) => `s.${c}`).join(', ')},
              v.id AS v_id, v.secret_id AS v_secret_id, v.version AS v_version, v.value_sealed AS v_value_sealed, v.value_origin AS v_value_origin,
              v.created_at AS v_created_at, v.created_by AS v_created_by, v.retired_at AS v_retired_at
         FROM secrets s JOIN secret_versions v ON v.secret_id = s.id
        WHERE s.target_machine_id = $1 OR ($2::text IS NOT NULL AND s.target_group = $2)
        ORDER BY s.id, v.version DESC`,
      [machineId, group],
    )) as (SecretRow & {
      v_id: string;
      v_secret_id: string;
      v_version: number;
      v_value_sealed: Buffer | null;
      v_value_origin: SecretValueOrigin | null;
      v_created_at: Date;
      v_created_by: string;
      v_retired_at: Date | null;
    })[];
    return rows.map((r) => ({
      secret: toSecret(r),
      version: toVersion({
        id: r.v_id,
        secret_id: r.v_secret_id,
        version: r.v_version,
        value_sealed: r.v_value_sealed,
        value_origin: r.v_value_origin,
        created_at: r.v_created_at,
        created_by: r.v_created_by,
        retired_at: r.v_retired_at,
      }),
    }));
  }

  /** A secret's versions, newest first. */
  async versionsOf(secretId: string, manager?: EntityManager): Promise<StoredSecretVersion[]> {
    const rows = (await (manager ?? this.dataSource).query(`SELECT ${VERSION_COLUMNS} FROM secret_versions WHERE secret_id = $1 ORDER BY version DESC`, [secretId])) as VersionRow[];
    return rows.map(toVersion);
  }

  /** How many machines hold material of each of these versions. */
  async materialCounts(versionIds: readonly string[], manager?: EntityManager): Promise<Map<string, number>> {
    const rows = (await (manager ?? this.dataSource).query('SELECT version_id, count(*)::int AS n FROM secret_materials WHERE version_id = ANY($1::uuid[]) GROUP BY version_id', [
      versionIds,
    ])) as { version_id: string; n: number }[];
    return new Map(rows.map((r) => [r.version_id, r.n]));
  }

  /** A version's materials without their blobs, by serial. */
  async materialsOf(versionId: string): Promise<ListedMaterial[]> {
    const rows = (await this.dataSource.query(
      `SELECT s.machine_id, m.serial, s.created_at, s.certificate_serial, s.not_after FROM secret_materials s JOIN machines m ON m.id = s.machine_id
        WHERE s.version_id = $1 ORDER BY m.serial`,
      [versionId],
    )) as { machine_id: string; serial: string; created_at: Date; certificate_serial: string | null; not_after: Date | null }[];
    return rows.map((r) => ({ machineId: r.machine_id, serial: r.serial, createdAt: r.created_at, certificateSerial: r.certificate_serial, notAfter: r.not_after }));
  }

  /**
   * Locks a version's row until `manager`'s transaction ends: the acks of one version serialise on
   * it, so the last of two concurrent acks sees the other's and retires the older versions.
   */
  async lockVersion(versionId: string, manager: EntityManager): Promise<StoredSecretVersion | undefined> {
    const [row] = (await manager.query(`SELECT ${VERSION_COLUMNS} FROM secret_versions WHERE id = $1 FOR UPDATE`, [versionId])) as VersionRow[];
    return row === undefined ? undefined : toVersion(row);
  }

  /** Retires every version of the secret older than `version` not retired yet; answers them. */
  async retireOlder(secretId: string, version: number, at: Date, manager: EntityManager): Promise<StoredSecretVersion[]> {
    const [rows] = (await manager.query(
      `UPDATE secret_versions SET retired_at = $3 WHERE secret_id = $1 AND version < $2 AND retired_at IS NULL RETURNING ${VERSION_COLUMNS}`,
      [secretId, version, at],
    )) as [VersionRow[], number];
    return rows.map(toVersion);
  }

  /** Flags a secret for the operator's rotation (a shared uploaded value a revoked machine held); a flag already set keeps its first time. */
  async requireRotation(secretId: string, reason: string, at: Date, manager: EntityManager): Promise<void> {
    await manager.query('UPDATE secrets SET rotation_required_at = COALESCE(rotation_required_at, $2), rotation_required_reason = COALESCE(rotation_required_reason, $3) WHERE id = $1', [
      secretId,
      at,
      reason,
    ]);
  }

  /** A new version answers the flag. */
  async clearRotationRequired(secretId: string, manager: EntityManager): Promise<void> {
    await manager.query('UPDATE secrets SET rotation_required_at = NULL, rotation_required_reason = NULL WHERE id = $1 AND rotation_required_at IS NOT NULL', [secretId]);
  }

  /**
   * Secrets whose latest version is due at `now` (after `afterName`, by name, up to `limit`):
   * - tls and kubelet-client: the earliest certificate of the latest version ends within
   *   `renewBeforeDays` (a version without material yet is not due: nothing to renew);
   * - disk: the latest version is at least `rotateEveryDays` old (absent or 0: never scheduled).
   */
  async dueForRotation(now: Date, afterName: string | undefined, limit: number): Promise<DueSecret[]> {
    const rows = (await this.dataSource.query(
      `SELECT s.id, s.name, v.version,
              CASE WHEN s.kind IN ('tls', 'kubelet-client') THEN 'renew-before' ELSE 'rotate-every' END AS reason
         FROM secrets s
         JOIN LATERAL (SELECT id, version, created_at FROM secret_versions WHERE secret_id = s.id ORDER BY version DESC LIMIT 1) v ON true
        WHERE ($2::text IS NULL OR s.name > $2)
          AND (
            (s.kind IN ('tls', 'kubelet-client') AND
              (SELECT min(not_after) FROM secret_materials WHERE version_id = v.id) - make_interval(days => (s.parameters->>'renewBeforeDays')::int) <= $1)
            OR (s.kind = 'disk' AND COALESCE((s.parameters->>'rotateEveryDays')::int, 0) > 0 AND
              v.created_at + make_interval(days => (s.parameters->>'rotateEveryDays')::int) <= $1))
        ORDER BY s.name LIMIT $3`,
      [now, afterName ?? null, limit],
    )) as { id: string; name: string; version: number; reason: RotationReason }[];
    return rows.map((r) => ({ secretId: r.id, name: r.name, latestVersion: r.version, reason: r.reason }));
  }

  async findMaterial(versionId: string, machineId: string, manager?: EntityManager): Promise<StoredSecretMaterial | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${MATERIAL_COLUMNS} FROM secret_materials WHERE version_id = $1 AND machine_id = $2`, [
      versionId,
      machineId,
    ])) as MaterialRow[];
    return row === undefined ? undefined : toMaterial(row);
  }

  /**
   * Inserts a machine's material of a version unless it has one (the unique (version, machine)):
   * true when this row was written; a caller that loses reads the winner's row.
   */
  async insertMaterialIfAbsent(m: StoredSecretMaterial, manager?: EntityManager): Promise<boolean> {
    const rows = (await (manager ?? this.dataSource).query(
      `INSERT INTO secret_materials (${MATERIAL_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (version_id, machine_id) DO NOTHING RETURNING id`,
      [m.id, m.versionId, m.machineId, m.materialSealed, m.certificatePem, m.certificateSerial, m.notAfter, m.kubeletConf, m.createdAt],
    )) as unknown[];
    return rows.length === 1;
  }
}

function toSecret(r: SecretRow): StoredSecret {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    targetGroup: r.target_group,
    targetMachineId: r.target_machine_id,
    binding: r.binding,
    parameters: r.parameters,
    createdAt: r.created_at,
    createdBy: r.created_by,
    rotationRequiredAt: r.rotation_required_at ?? null,
    rotationRequiredReason: r.rotation_required_reason ?? null,
  };
}

function toVersion(r: VersionRow): StoredSecretVersion {
  return {
    id: r.id,
    secretId: r.secret_id,
    version: r.version,
    valueSealed: r.value_sealed,
    valueOrigin: r.value_origin,
    createdAt: r.created_at,
    createdBy: r.created_by,
    retiredAt: r.retired_at,
  };
}

function toMaterial(r: MaterialRow): StoredSecretMaterial {
  return {
    id: r.id,
    versionId: r.version_id,
    machineId: r.machine_id,
    materialSealed: r.material_sealed,
    certificatePem: r.certificate_pem,
    certificateSerial: r.certificate_serial,
    notAfter: r.not_after,
    kubeletConf: r.kubelet_conf,
    createdAt: r.created_at,
  };
}
