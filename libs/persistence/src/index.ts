export * from './database-ping';
export * from './data-source-options';
export * from './migration-runner';
export * from './persistence.module';
