export * from './columns';
export * from './csv-reader';
export * from './row-validator';
export * from './importer';
export * from './staging-batch';
export * from './worker-row-checker';
export * from './upload-idle-timeout';
