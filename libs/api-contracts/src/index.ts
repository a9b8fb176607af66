export * from './paging';
export * from './errors';
