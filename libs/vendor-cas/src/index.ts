export * from './vendor-ca.entity';
export * from './vendor-cas';
export * from './vendor-cas.provider';
export * from './trust-store-cache';
