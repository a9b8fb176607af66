import { Injectable } from '@nestjs/common';
import type { CertifiedKey, CertifiedKeyRetiredReason } from '@rackseal/api-contracts';
import type { EntityManager } from 'typeorm';

/** One row of `key_challenges`. */
export interface KeyChallenge {
  readonly nonce: Buffer;
  readonly machineId: string;
  readonly credentialId: string;
  readonly createdAt: Date;
  readonly deadline: Date;
  readonly consumedAt: Date | null;
}

export type NewCertifiedKey = Omit<CertifiedKey<Date>, 'retiredAt' | 'retiredReason' | 'publicArea'> & { readonly publicArea: Buffer };

interface ChallengeRow {
  nonce: Buffer;
  machine_id: string;
  credential_id: string;
  created_at: Date;
  deadline: Date;
  consumed_at: Date | null;
}

function toChallenge(r: ChallengeRow): KeyChallenge {
  return { nonce: r.nonce, machineId: r.machine_id, credentialId: r.credential_id, createdAt: r.created_at, deadline: r.deadline, consumedAt: r.consumed_at };
}

interface KeyRow {
  id: string;
  machine_id: string;
  registration_id: string;
  credential_id: string;
  public_area: Buffer;
  name: Buffer;
  algorithm: string;
  created_at: Date;
  retired_at: Date | null;
  retired_reason: CertifiedKeyRetiredReason | null;
}

const KEY_COLUMNS = 'id, machine_id, registration_id, credential_id, public_area, name, algorithm, created_at, retired_at, retired_reason';
const CHALLENGE_COLUMNS = 'nonce, machine_id, credential_id, created_at, deadline, consumed_at';

function toKey(r: KeyRow): CertifiedKey<Date> {
  return {
    id: r.id,
    machineId: r.machine_id,
    name: r.name.toString('hex'),
    algorithm: r.algorithm,
    publicArea: r.public_area.toString('base64'),
    registrationId: r.registration_id,
    credentialId: r.credential_id,
    certifiedAt: r.created_at,
    retiredAt: r.retired_at,
    retiredReason: r.retired_reason,
  };
}

/**
 * The one owner of `key_challenges` and `certified_keys` (migration 1764900000000). Every method
 * runs in the caller's transaction, so a certification, the key it retires and the audit records
 * commit together.
 */
@Injectable()
export class CertifiedKeysRepository {
  async insertChallenge(challenge: Omit<KeyChallenge, 'consumedAt'>, manager: EntityManager): Promise<void> {
    const c = challenge;
    await manager.query('INSERT INTO key_challenges (nonce, machine_id, credential_id, created_at, deadline) VALUES ($1, $2, $3, $4, $5)', [
      c.nonce,
      c.machineId,
      c.credentialId,
      c.createdAt,
      c.deadline,
    ]);
  }

  /** Deletes the machine's challenges whose deadline passed before `now` (bounded by what one machine asked for in one TTL). */
  async deleteExpiredChallenges(machineId: string, now: Date, manager: EntityManager): Promise<void> {
    await manager.query('DELETE FROM key_challenges WHERE machine_id = $1 AND deadline <= $2', [machineId, now]);
  }

  /**
   * Takes the machine's challenge `nonce`, once: `UPDATE … WHERE consumed_at IS NULL` takes the row
   * lock, and a concurrent certify (on any replica) re-checks the WHERE after the winner commits
   * and matches nothing (PostgreSQL READ COMMITTED). Another machine's challenge is never taken.
   */
  async consumeChallenge(nonce: Buffer, machineId: string, at: Date, manager: EntityManager): Promise<KeyChallenge | undefined> {
    const [rows] = (await manager.query(
      `UPDATE key_challenges SET consumed_at = $3 WHERE nonce = $1 AND machine_id = $2 AND consumed_at IS NULL RETURNING ${CHALLENGE_COLUMNS}`,
      [nonce, machineId, at],
    )) as [ChallengeRow[], number];
    return rows[0] === undefined ? undefined : toChallenge(rows[0]);
  }

  async findChallenge(nonce: Buffer, manager: EntityManager): Promise<KeyChallenge | undefined> {
    const [row] = (await manager.query(`SELECT ${CHALLENGE_COLUMNS} FROM key_challenges WHERE nonce = $1`, [nonce])) as ChallengeRow[];
    return row === undefined ? undefined : toChallenge(row);
  }

  async liveKey(machineId: string, manager: EntityManager): Promise<CertifiedKey<Date> | undefined> {
    const [row] = (await manager.query(`SELECT ${KEY_COLUMNS} FROM certified_keys WHERE machine_id = $1 AND retired_at IS NULL`, [machineId])) as KeyRow[];
    return row === undefined ? undefined : toKey(row);
  }

  /** liveKey for several machines in one statement: machine id → its live key (absent without one). */
  async liveKeys(machineIds: readonly string[], manager: EntityManager): Promise<Map<string, CertifiedKey<Date>>> {
    const rows = (await manager.query(`SELECT ${KEY_COLUMNS} FROM certified_keys WHERE machine_id = ANY($1::uuid[]) AND retired_at IS NULL`, [[...new Set(machineIds)]])) as KeyRow[];
    return new Map(rows.map((r) => [r.machine_id, toKey(r)]));
  }

  /** Which of these machines have a live certified key. */
  async machinesWithLiveKey(machineIds: readonly string[], manager: EntityManager): Promise<Set<string>> {
    const rows = (await manager.query('SELECT machine_id FROM certified_keys WHERE machine_id = ANY($1::uuid[]) AND retired_at IS NULL', [machineIds])) as { machine_id: string }[];
    return new Set(rows.map((r) => r.machine_id));
  }

  /** Retires the machine's live key, if it has one, and answers it as it was. */
  async retireLive(machineId: string, at: Date, reason: CertifiedKeyRetiredReason, manager: EntityManager): Promise<CertifiedKey<Date> | undefined> {
    const [rows] = (await manager.query(
      `UPDATE certified_keys SET retired_at = $2, retired_reason = $3 WHERE machine_id = $1 AND retired_at IS NULL RETURNING ${KEY_COLUMNS}`,
      [machineId, at, reason],
    )) as [KeyRow[], number];
    return rows[0] === undefined ? undefined : toKey(rows[0]);
  }

  async insertKey(key: NewCertifiedKey, manager: EntityManager): Promise<void> {
    await manager.query(
      `INSERT INTO certified_keys (id, machine_id, registration_id, credential_id, public_area, name, algorithm, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [key.id, key.machineId, key.registrationId, key.credentialId, key.publicArea, Buffer.from(key.name, 'hex'), key.algorithm, key.certifiedAt],
    );
  }

  /** The machine's keys, live and retired, newest first. */
  async keysOf(machineId: string, manager: EntityManager): Promise<CertifiedKey<Date>[]> {
    const rows = (await manager.query(`SELECT ${KEY_COLUMNS} FROM certified_keys WHERE machine_id = $1 ORDER BY created_at DESC, id`, [machineId])) as KeyRow[];
    return rows.map(toKey);
  }
}
