import { domainErrorFor, type ErrorCodeTable } from '@rackseal/api-contracts';
import { NODE_REQUEST_REFUSAL_CODES, type NodeRequestRefusalCode } from '@rackseal/node-api-contracts';

/**
 * The node request guard's refusals: every one a 401 (kind `unauthenticated`), with the stable code
 * the node API contract declares (README, "Node API"). The codes are the control plane's own, not a
 * library's: the guard is where a node request is authenticated.
 */
export const NODE_REQUEST_ERROR_CODES = Object.fromEntries(NODE_REQUEST_REFUSAL_CODES.map((code) => [code, 'unauthenticated'])) as {
  readonly [Code in NodeRequestRefusalCode]: 'unauthenticated';
} satisfies ErrorCodeTable;

export class NodeRequestError extends domainErrorFor(NODE_REQUEST_ERROR_CODES) {
  constructor(code: NodeRequestRefusalCode, message: string) {
    super(code, message);
    this.name = 'NodeRequestError';
  }
}
