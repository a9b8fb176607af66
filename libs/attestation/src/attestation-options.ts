import type { MasterKeys } from '@rackseal/envelope';
import type { TrustStore } from '@rackseal/ek-trust';
import type { EntityManager } from 'typeorm';
import type { AttestedMachineHook } from './attested-machine-hook';
import type { RuntimeIntegrityCheck } from './runtime-integrity-check';

export interface AttestationServiceOptions {
  /** The process's master keys (libs/master-keys): seal under the current one, open under any. */
  readonly masterKey: MasterKeys;
  /** EK_CERT_GRACE_DAYS. */
  readonly ekGraceDays: number;
  /** ATTESTATION_REGISTRATION_TTL_MS. */
  readonly registrationTtlMs: number;
  /** The enabled vendor CAs (libs/vendor-cas `loadTrustStore`: this library does not depend on it). */
  readonly loadTrustStore: (manager: EntityManager) => Promise<TrustStore>;
  /** Called in the transaction of each successful attestation (libs/deliveries); absent, nothing more is decided. */
  readonly attestedHook?: AttestedMachineHook;
  /** The groups' runtime policies (issue 17); absent, no IMA list is asked for. */
  readonly runtime?: RuntimeIntegrityCheck;
}
