import type { Provider } from '@nestjs/common';
import { AuditLog, SuppressedAuditRecords } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { MasterKeys } from '@rackseal/envelope';
import { MachineRevocationFollowUp, MachineRevocationHook, MachineRevocationHooks, MachinesRepository } from '@rackseal/machines';
import { Clock, RandomSource } from '@rackseal/platform';
import { DataSource } from 'typeorm';
import { AttestationRepository } from './attestation.repository';
import type { AttestationServiceOptions } from './attestation-options';
import { AttestationService } from './attestation.service';
import { AttestedMachineHook } from './attested-machine-hook';
import { MachineWrappingKeys } from './machine-wrapping-keys';
import { CertifiedKeysRepository } from './certified-keys.repository';
import { KeyCertification } from './key-certification';
import { PcrApprovals } from './pcr-approvals';
import { PcrApprovalsRepository } from './pcr-approvals.repository';
import { PcrPolicies } from './pcr-policies';
import { NodeCredentials } from './node-credentials';
import { NodeRequestNonces } from './node-request-nonces';
import { PcrPoliciesRepository, StoredPcrPolicySource } from './pcr-policies.repository';
import { PcrPolicySource } from './pcr-policy-source';
import { MachineImaRepository } from './machine-ima.repository';
import { RuntimeIntegrityCheck } from './runtime-integrity-check';
import { RuntimePolicies } from './runtime-policies';
import { RuntimePoliciesRepository } from './runtime-policies.repository';

/**
 * The attestation service and what it needs, wired to the process's database, audit log, clock,
 * randomness and validated config (PcrApprovals, the group's signed PCR approvals, with the
 * policies it follows); the vendor CA store comes as `loadTrustStore` (libs/vendor-cas:
 * this library does not depend on it). PcrPolicySource is the stored policies (`pcr_policies`); a
 * test may override the provider. NodeCredentials is also libs/machines' MachineRevocationHook, so
 * a revoke ends the machine's credential — and, with KeyCertification, retires its certified key
 * (MachineRevocationHooks), then a library above this one ends its own (MachineRevocationFollowUp,
 * libs/deliveries' cancellations and rotations, when the process has deliveries); NodeRequestNonces is the node request guard's replay store.
 */
export function attestationProviders(loadTrustStore: AttestationServiceOptions['loadTrustStore']): Provider[] {
  return [
    AttestationRepository,
    PcrPoliciesRepository,
    PcrApprovalsRepository,
    PcrApprovals,
    PcrPolicies,
    RuntimePoliciesRepository,
    MachineImaRepository,
    RuntimePolicies,
    {
      provide: RuntimeIntegrityCheck,
      inject: [RuntimePoliciesRepository, MachineImaRepository],
      useFactory: (policies: RuntimePoliciesRepository, states: MachineImaRepository) => new RuntimeIntegrityCheck(policies, states),
    },
    { provide: PcrPolicySource, useClass: StoredPcrPolicySource },
    {
      provide: NodeCredentials,
      inject: [DataSource, AttestationRepository, MachinesRepository, MasterKeys],
      useFactory: (dataSource: DataSource, credentials: AttestationRepository, machines: MachinesRepository, keys: MasterKeys) =>
        new NodeCredentials(dataSource, credentials, machines, keys),
    },
    CertifiedKeysRepository,
    MachineWrappingKeys,
    {
      provide: KeyCertification,
      inject: [DataSource, AuditLog, MachinesRepository, AttestationRepository, CertifiedKeysRepository, Clock, RandomSource, RACKSEAL_CONFIG, { token: AttestedMachineHook, optional: true }],
      useFactory: (
        dataSource: DataSource,
        audit: AuditLog,
        machines: MachinesRepository,
        credentials: AttestationRepository,
        keys: CertifiedKeysRepository,
        clock: Clock,
        random: RandomSource,
        config: RacksealConfig,
        hook: AttestedMachineHook | undefined,
      ) =>
        // A challenge lives as long as a registration: both are a server nonce the TPM must answer.
        new KeyCertification(dataSource, audit, machines, credentials, keys, clock, random, config.attestation.registrationTtlMs, hook),
    },
    {
      provide: MachineRevocationHook,
      inject: [NodeCredentials, KeyCertification, { token: MachineRevocationFollowUp, optional: true }],
      useFactory: (credentials: NodeCredentials, keys: KeyCertification, followUp: MachineRevocationFollowUp | undefined) =>
        new MachineRevocationHooks(followUp === undefined ? [credentials, keys] : [credentials, keys, followUp]),
    },
    { provide: NodeRequestNonces, inject: [DataSource, Clock], useFactory: (dataSource: DataSource, clock: Clock) => new NodeRequestNonces(dataSource, clock) },
    {
      provide: AttestationService,
      inject: [
        DataSource,
        AuditLog,
        MachinesRepository,
        AttestationRepository,
        PcrPolicySource,
        Clock,
        RandomSource,
        RACKSEAL_CONFIG,
        SuppressedAuditRecords,
        MasterKeys,
        RuntimeIntegrityCheck,
        { token: AttestedMachineHook, optional: true },
      ],
      useFactory: (
        dataSource: DataSource,
        audit: AuditLog,
        machines: MachinesRepository,
        registrations: AttestationRepository,
        policies: PcrPolicySource,
        clock: Clock,
        random: RandomSource,
        config: RacksealConfig,
        suppressed: SuppressedAuditRecords,
        keys: MasterKeys,
        runtime: RuntimeIntegrityCheck,
        hook: AttestedMachineHook | undefined,
      ) =>
        new AttestationService(
          dataSource,
          audit,
          machines,
          registrations,
          policies,
          clock,
          random,
          {
            masterKey: keys,
            ekGraceDays: config.ekCertGraceDays,
            registrationTtlMs: config.attestation.registrationTtlMs,
            loadTrustStore,
            runtime,
            ...(hook === undefined ? {} : { attestedHook: hook }),
          },
          suppressed,
        ),
    },
  ];
}
