export * from './tpm-parse-error';
export * from './tpm-reader';
export * from './tpm-writer';
