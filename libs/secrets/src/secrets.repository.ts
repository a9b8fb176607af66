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
}

export interface StoredSecretVersion {
  readonly id: string;
  readonly secretId: string;
  readonly version: number;
  /** An opaque secret's value, sealed with `secret-version:<id>`; null for per-machine kinds. */
  readonly valueSealed: Buffer | null;
  readonly createdAt: Date;
  readonly createdBy: string;
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
const VERSION_COLUMNS = 'id, secret_id, version, value_sealed, created_at, created_by';
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
}

interface VersionRow {
  id: string;
  secret_id: string;
  version: number;
  value_sealed: Buffer | null;
  created_at: Date;
  created_by: string;
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
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${SECRET_COLUMNS} FROM secrets WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, [name])) as SecretRow[];
    return row === undefined ? undefined : toSecret(row);
  }

  async findById(id: string, manager?: EntityManager): Promise<StoredSecret | undefined> {
    const [row] = (await (manager ?? this.dataSource).query(`SELECT ${SECRET_COLUMNS} FROM secrets WHERE id = $1`, [id])) as SecretRow[];
    return row === undefined ? undefined : toSecret(row);
  }

  /** Secrets ordered by name after `after` (keyset paging). */
  async list(after: string | undefined, limit: number): Promise<StoredSecret[]> {
    const rows = (await this.dataSource.query(`SELECT ${SECRET_COLUMNS} FROM secrets WHERE ($1::text IS NULL OR name > $1) ORDER BY name LIMIT $2`, [
      after ?? null,
      limit,
    ])) as SecretRow[];
    return rows.map(toSecret);
  }

  async insertVersion(v: StoredSecretVersion, manager: EntityManager): Promise<void> {
    await manager.query(`INSERT INTO secret_versions (${VERSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)`, [v.id, v.secretId, v.version, v.valueSealed, v.createdAt, v.createdBy]);
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
      `SELECT DISTINCT ON (s.id) ${SECRET_COLUMNS.split(', ').map((c) => `s.${c}`).join(', ')},
              v.id AS v_id, v.secret_id AS v_secret_id, v.version AS v_version, v.value_sealed AS v_value_sealed, v.created_at AS v_created_at, v.created_by AS v_created_by
         FROM secrets s JOIN secret_versions v ON v.secret_id = s.id
        WHERE s.target_machine_id = $1 OR ($2::text IS NOT NULL AND s.target_group = $2)
        ORDER BY s.id, v.version DESC`,
      [machineId, group],
    )) as (SecretRow & { v_id: string; v_secret_id: string; v_version: number; v_value_sealed: Buffer | null; v_created_at: Date; v_created_by: string })[];
    return rows.map((r) => ({
      secret: toSecret(r),
      version: toVersion({ id: r.v_id, secret_id: r.v_secret_id, version: r.v_version, value_sealed: r.v_value_sealed, created_at: r.v_created_at, created_by: r.v_created_by }),
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
  };
}

function toVersion(r: VersionRow): StoredSecretVersion {
  return { id: r.id, secretId: r.secret_id, version: r.version, valueSealed: r.value_sealed, createdAt: r.created_at, createdBy: r.created_by };
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
