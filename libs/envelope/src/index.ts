export * from './envelope';
export * from './envelope-errors';
