import { ATTESTATION_SEALED_COLUMNS, PCR_APPROVALS_SEALED_COLUMNS } from '@rackseal/attestation';
import { AUDIT_SEALED_COLUMNS } from '@rackseal/audit';
import type { SealedColumn } from '@rackseal/envelope';
import { SECRETS_SEALED_COLUMNS } from '@rackseal/secrets';

/**
 * Every database column holding envelopes, as the library owning each table declares it: what
 * `rackseal master-key rotate` re-wraps. A new sealed column is added here by its library
 * (test/master-key-rotation.test.ts fails while a `*sealed*` bytea column of the schema is missing).
 */
export const SEALED_COLUMNS: readonly SealedColumn[] = [...AUDIT_SEALED_COLUMNS, ...ATTESTATION_SEALED_COLUMNS, ...PCR_APPROVALS_SEALED_COLUMNS, ...SECRETS_SEALED_COLUMNS];
