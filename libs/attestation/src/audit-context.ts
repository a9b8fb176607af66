import type { JsonValue } from '@rackseal/audit';

/**
 * Who and what a refusal's audit record names, filled in as an attestation call learns them: a
 * call starts anonymous and names the machine once its EK or registration identifies it.
 */
export interface AuditContext {
  actor: string;
  subject: string;
  details: Record<string, JsonValue>;
  /** Once known: the machine whose record keeps the refusal as its last failure. */
  machineId?: string;
  registrationId?: string;
}

/** The actor of a call that has not (yet) named a machine of the inventory. */
export const ANONYMOUS_NODE = 'node:unidentified';
