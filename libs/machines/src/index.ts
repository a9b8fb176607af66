export * from './machine';
export * from './machine-errors';
export * from './machine-failure';
export * from './machine-ref';
export * from './machine-state';
export * from './machines.repository';
export * from './machine-revocation-hook';
export * from './machine-revocations';
