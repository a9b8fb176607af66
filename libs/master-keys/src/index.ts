export * from './master-key-errors';
export * from './master-keys.module';
export * from './open-master-keys';
export * from './pkcs11-master-key';
