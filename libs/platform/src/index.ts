export * from './clock';
export * from './platform.module';
export * from './random-source';
