export * from './machine';
export * from './machine-errors';
export * from './machine-state';
export * from './machines.repository';
