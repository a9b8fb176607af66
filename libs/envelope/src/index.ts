export * from './envelope';
export * from './envelope-errors';
export * from './master-key';
export * from './sealed-column';
