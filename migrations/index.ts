import { CreateAuditLog1763700000000 } from './1763700000000-create-audit-log';
import { CreateApiTokens1763800000000 } from './1763800000000-create-api-tokens';

/** Every migration, oldest first. Listed by hand so a build never picks up a stray file. */
export const MIGRATIONS = [CreateAuditLog1763700000000, CreateApiTokens1763800000000];
