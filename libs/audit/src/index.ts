export * from './audit-chain-verifier';
export * from './audit-entry';
export * from './audit-hash';
export * from './audit-log';
export * from './audit-timestamp';
export * from './audit-record.entity';
export * from './audit.module';
export * from './canonical-json';
