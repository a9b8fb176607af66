import type { TpmReader } from '../codec/tpm-reader';
import type { TpmWriter } from '../codec/tpm-writer';
import { TPM_RH } from '../constants';

/**
 * Part 2 §6.9 TPM_ST values that tag tickets. Kept here rather than in constants.ts's TPM_ST
 * (attestation tags): only the command layer reads or writes tickets.
 */
export const TPM_ST_TICKET = {
  TPM_ST_CREATION: 0x8021,
  TPM_ST_VERIFIED: 0x8022,
  TPM_ST_AUTH_SECRET: 0x8023,
  TPM_ST_HASHCHECK: 0x8024,
  TPM_ST_AUTH_SIGNED: 0x8025,
} as const;

/**
 * Part 2 §10.7 tickets, which all share one layout:
 *   tag       TPM_ST              which ticket (TPM_ST_CREATION, _VERIFIED, _AUTH_SECRET, …)
 *   hierarchy TPMI_RH_HIERARCHY+  the hierarchy whose proof value keys the HMAC (TPM_RH_NULL: none)
 *   digest    TPM2B_DIGEST        HMAC(proof, …); empty in a NULL ticket
 * A ticket is only meaningful to the TPM that made it; we carry it from one command to the next.
 */
export interface TPMT_TK {
  readonly tag: number;
  readonly hierarchy: number;
  readonly digest: Buffer;
}

const MAX_DIGEST = 64;

export function readTicket(r: TpmReader, field: string): TPMT_TK {
  return r.within(field, () => ({ tag: r.u16('tag'), hierarchy: r.u32('hierarchy'), digest: r.tpm2b('digest', MAX_DIGEST) }));
}

export function writeTicket(w: TpmWriter, ticket: TPMT_TK): void {
  w.u16(ticket.tag).u32(ticket.hierarchy).tpm2b(ticket.digest);
}

/**
 * The NULL ticket of a kind (Part 2 §10.7.4: hierarchy TPM_RH_NULL, empty digest): what a trial
 * PolicyAuthorize takes, since a trial session does not check the ticket.
 */
export function nullTicket(tag: number): TPMT_TK {
  return { tag, hierarchy: TPM_RH.TPM_RH_NULL, digest: Buffer.alloc(0) };
}
