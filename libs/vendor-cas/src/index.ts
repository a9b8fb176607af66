export * from './vendor-ca.entity';
export * from './vendor-cas';
