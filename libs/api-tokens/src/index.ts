export * from './api-token.entity';
export * from './api-tokens';
export * from './scopes';
export * from './token-format';
export * from './token-name';
export * from './api-tokens.provider';
