export * from './master-key-errors';
export * from './master-keys.module';
export * from './open-master-keys';
export * from './pkcs11-master-key';
export * from './rotate-master-key';
export * from './sealed-columns';
