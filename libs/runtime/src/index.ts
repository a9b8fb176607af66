export * from './boot';
export * from './shared-imports';
