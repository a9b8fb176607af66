import { CreateAuditLog1763700000000 } from './1763700000000-create-audit-log';

/** Every migration, oldest first. Listed by hand so a build never picks up a stray file. */
export const MIGRATIONS = [CreateAuditLog1763700000000];
