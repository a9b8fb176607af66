export * from './api-token.entity';
export * from './api-tokens';
export * from './scopes';
export * from './token-format';
export * from './token-name';
export * from './api-tokens.provider';
export * from './operator-sessions';
export * from './operator-sessions.provider';
