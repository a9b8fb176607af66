export * from './attestation';
export * from './base-path';
