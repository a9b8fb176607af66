export * from './device-transport';
export * from './open-transport';
export * from './response-codes';
export * from './session-auth';
export * from './swtpm-transport';
export * from './tpm-client';
export * from './tpm-errors';
export * from './transport';
