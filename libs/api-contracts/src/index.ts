export * from './paging';
export * from './errors';
export * from './inventory';
export * from './machines';
export * from './tokens';
export * from './audit';
export * from './vendor-cas';
export * from './policies';
