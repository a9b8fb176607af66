export * from './codec';
export * from './constants';
export * from './hash-algorithms';
export * from './structures/schemes';
export * from './structures/tpmt-public';
export * from './structures/tpmt-sym-def-object';
export * from './structures/tpml-pcr-selection';
