export * from './attestation';
export * from './base-path';
export * from './self';
export * from './keys';
export * from './approvals';
export * from './delivery-payloads';
export * from './mailbox';
export * from './prewrapped-disk-key';
