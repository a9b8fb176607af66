export * from './ak-check';
export * from './attestation-errors';
export * from './attestation.provider';
export * from './attestation.repository';
export * from './attestation.service';
export * from './event-log-check';
export * from './pcr-policy-source';
export * from './wire-input';
