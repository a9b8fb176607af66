import { CreateAuditLog1763700000000 } from './1763700000000-create-audit-log';
import { CreateApiTokens1763800000000 } from './1763800000000-create-api-tokens';
import { CreateVendorCas1763900000000 } from './1763900000000-create-vendor-cas';
import { CreateInventory1764000000000 } from './1764000000000-create-inventory';
import { MachinesBulkInsertCosts1764100000000 } from './1764100000000-machines-bulk-insert-costs';
import { MachineTransitions1764200000000 } from './1764200000000-machine-transitions';
import { AuditTransparencyLog1764300000000 } from './1764300000000-audit-transparency-log';
import { MachineAttestationRecord1764400000000 } from './1764400000000-machine-attestation-record';
import { AttestationRegistrations1764500000000 } from './1764500000000-attestation-registrations';
import { AttestationEvidence1764600000000 } from './1764600000000-attestation-evidence';
import { NodeRequestNonces1764700000000 } from './1764700000000-node-request-nonces';
import { GroupAttestationIntervals1764800000000 } from './1764800000000-group-attestation-intervals';
import { CertifiedKeys1764900000000 } from './1764900000000-certified-keys';
import { MasterKeyRewrap1765000000000 } from './1765000000000-master-key-rewrap';
import { Secrets1765200000000 } from './1765200000000-secrets';
import { PcrApprovals1765300000000 } from './1765300000000-pcr-approvals';
import { MachinesLiveHostname1765400000000 } from './1765400000000-machines-live-hostname';
import { Deliveries1765500000000 } from './1765500000000-deliveries';
import { Rotation1765600000000 } from './1765600000000-rotation';
import { Prewrap1765700000000 } from './1765700000000-prewrap';
import { OperatorSessions1765800000000 } from './1765800000000-operator-sessions';
import { RuntimeIntegrity1765900000000 } from './1765900000000-runtime-integrity';
import { MachineImaObservedBytes1765910000000 } from './1765910000000-machine-ima-observed-bytes';

/** Every migration, oldest first. Listed by hand so a build never picks up a stray file. */
export const MIGRATIONS = [
  CreateAuditLog1763700000000,
  CreateApiTokens1763800000000,
  CreateVendorCas1763900000000,
  CreateInventory1764000000000,
  MachinesBulkInsertCosts1764100000000,
  MachineTransitions1764200000000,
  AuditTransparencyLog1764300000000,
  MachineAttestationRecord1764400000000,
  AttestationRegistrations1764500000000,
  AttestationEvidence1764600000000,
  NodeRequestNonces1764700000000,
  GroupAttestationIntervals1764800000000,
  CertifiedKeys1764900000000,
  MasterKeyRewrap1765000000000,
  Secrets1765200000000,
  PcrApprovals1765300000000,
  MachinesLiveHostname1765400000000,
  Deliveries1765500000000,
  Rotation1765600000000,
  Prewrap1765700000000,
  OperatorSessions1765800000000,
  RuntimeIntegrity1765900000000,
  MachineImaObservedBytes1765910000000,
];
