import type { CaKind } from '@rackseal/api-contracts';
import { Column, Entity, PrimaryColumn } from 'typeorm';

/**
 * A trusted TPM vendor CA (migration 1763900000000). Public data only. `der` is the certificate as
 * uploaded; the other columns are derived from it for listing and search.
 */
@Entity({ name: 'vendor_cas' })
export class VendorCaEntity {
  @PrimaryColumn({ type: 'uuid' })
  id: string;

  /** Lowercase hex SHA-256 of `der`. */
  @Column({ type: 'char', length: 64 })
  fingerprint: string;

  @Column({ type: 'bytea' })
  der: Buffer;

  @Column({ type: 'text' })
  subject: string;

  @Column({ type: 'text' })
  issuer: string;

  /** Hex of the serial's content octets as found (non-minimal and negative serials kept). */
  @Column({ type: 'text' })
  serial: string;

  @Column({ name: 'not_before', type: 'timestamptz' })
  notBefore: Date;

  @Column({ name: 'not_after', type: 'timestamptz' })
  notAfter: Date;

  @Column({ type: 'text' })
  kind: CaKind;

  @Column({ name: 'is_anchor', type: 'boolean' })
  isAnchor: boolean;

  @Column({ type: 'boolean' })
  enabled: boolean;

  /** Where it came from: a file name, "pem" for a pasted bundle. */
  @Column({ type: 'text', nullable: true })
  source: string | null;

  @Column({ name: 'added_at', type: 'timestamptz' })
  addedAt: Date;

  @Column({ name: 'added_by', type: 'text' })
  addedBy: string;

  @Column({ name: 'disabled_at', type: 'timestamptz', nullable: true })
  disabledAt: Date | null;

  @Column({ name: 'disabled_by', type: 'text', nullable: true })
  disabledBy: string | null;
}
