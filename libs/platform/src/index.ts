export * from './clock';
export * from './platform.module';
export * from './random-source';
export * from './micro-batcher';
