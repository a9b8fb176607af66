export * from './pcr-policy';
export * from './pcr-policy-error';
export * from './parse-policy';
export * from './evaluate';
export * from './divergence';
export * from './event-description';
export * from './promote';
export * from './approval-math';
