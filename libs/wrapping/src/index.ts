export * from './wrapping-errors';
export * from './envelope-format';
export * from './content-cipher';
export * from './certified-key-wrap';
export * from './pcr-sealed-wrap';
export * from './ack-proof';
