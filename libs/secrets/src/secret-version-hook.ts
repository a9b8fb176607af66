import type { EntityManager } from 'typeorm';
import type { StoredSecret, StoredSecretVersion } from './secrets.repository';

/**
 * The decision that made a version: the operator's create or rotate, the worker's schedule (a
 * certificate near its end, a disk key's age), or the revocation of a machine that held a shared value.
 */
export type SecretVersionTrigger = 'created' | 'rotated' | 'scheduled' | 'machine-revoked';

/**
 * What else a new secret version decides, in its transaction: issue 14's deliveries (libs/deliveries)
 * plan one delivery per target machine and the outbox row of its job, so a version commits with its
 * deliveries or not at all. An interface here, implemented there, because libs/deliveries depends on
 * this library (materialFor) and each table has one owner (docs/architecture.md §9). Optional: a
 * process without deliveries (a test module) makes versions without it.
 */
export abstract class SecretVersionHook {
  /** Called once per version, after its row and the target's material, inside `manager`'s transaction. */
  abstract versionCreated(event: { secret: StoredSecret; version: StoredSecretVersion; trigger: SecretVersionTrigger; actor: string }, manager: EntityManager): Promise<void>;
}
