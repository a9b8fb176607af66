export * from './base-path';
