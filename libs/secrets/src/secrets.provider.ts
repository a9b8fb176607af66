import type { Provider } from '@nestjs/common';
import { ClusterCas } from './cluster-cas';
import { ClusterCasRepository } from './cluster-cas.repository';
import { SecretMaterials } from './secret-materials';
import { Secrets } from './secrets';
import { SecretsRepository } from './secrets.repository';

/**
 * The secret and cluster CA services and their repositories. They need the process's DataSource,
 * AuditLog, MasterKeys, Clock, RandomSource (the shared modules) and libs/machines'
 * MachinesRepository, which the including module provides.
 */
export function secretsProviders(): Provider[] {
  return [ClusterCasRepository, SecretsRepository, ClusterCas, SecretMaterials, Secrets];
}
