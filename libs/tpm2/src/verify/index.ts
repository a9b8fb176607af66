export * from './attestation';
export * from './certify';
export * from './quote';
export * from './signature';
