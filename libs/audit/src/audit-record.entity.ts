import { Column, Entity, PrimaryColumn } from 'typeorm';
import type { AuditOutcome } from './audit-entry';
import type { JsonValue } from './canonical-json';

const bigintAsNumber = { to: (v: number) => v, from: (v: string) => Number(v) };

/** Read model of audit_log. Writes go through AuditLog.append only (the table refuses updates). */
@Entity({ name: 'audit_log' })
export class AuditRecordEntity {
  @PrimaryColumn({ type: 'bigint', transformer: bigintAsNumber })
  seq: number;

  @Column({ name: 'recorded_at', type: 'timestamptz' })
  recordedAt: Date;

  @Column({ type: 'text' })
  actor: string;

  @Column({ type: 'text' })
  action: string;

  @Column({ type: 'text' })
  subject: string;

  @Column({ type: 'text' })
  outcome: AuditOutcome;

  @Column({ type: 'jsonb' })
  details: { [key: string]: JsonValue };

  @Column({ name: 'prev_hash', type: 'bytea' })
  prevHash: Buffer;

  @Column({ type: 'bytea' })
  hash: Buffer;
}
