import { TPM_HT } from '@rackseal/tpm2/commands/capability-constants';
import { ekPubHash } from '@rackseal/tpm2/keys';
import { type EndorsementKey, getEndorsementKey } from '@rackseal/tpm2/operations/endorsement-key';
import type { LoadedObject } from '@rackseal/tpm2/operations/loaded-object';
import type { TpmScope } from '@rackseal/tpm2/operations/tpm-scope';

/**
 * Which EK the agent works with: by kind at enrollment, by the ekPubHash its identity records after.
 * A file of its own because boot unlock needs it too (unwrap-envelope.ts), and must not load the
 * attestation exchange's code (the HTTP client, node identity, EK certificates) to get it
 * (docs/decisions.md "Boot unlock, fast"); single files of libs/tpm2 for the same reason.
 */

/** The EKs the agent enrolls with: the two a PC Client TPM carries certificates for (L-1, L-2). */
export const ENROLL_EK_KINDS = ['rsa-2048', 'ecc-p256'] as const;
export type EnrollEkKind = (typeof ENROLL_EK_KINDS)[number];

/** The EK to attest with: a kind (enroll), or the one whose ekPubHash the identity records (run). */
export type EkChoice = { readonly kind: EnrollEkKind } | { readonly ekPubHash: string };

/** An identity's EK is none of this TPM's: the state dir is another machine's, or the TPM was cleared. */
export class EkNotFoundError extends Error {
  constructor(expected: string) {
    super(`this TPM has no EK with the enrolled ekPubHash ${expected} (${ENROLL_EK_KINDS.join(', ')} tried): the state dir is another machine's, or the TPM was cleared (enroll again)`);
    this.name = 'EkNotFoundError';
  }
}

export async function chooseEk(scope: TpmScope, choice: EkChoice): Promise<{ kind: EnrollEkKind; ek: EndorsementKey; hash: string }> {
  if ('kind' in choice) {
    const ek = await getEndorsementKey(scope, choice.kind);
    return { kind: choice.kind, ek, hash: ekPubHash(ek.public) };
  }
  // Re-attestation must prove the same machine: the EK the identity names, whichever kind it is
  // (an EK of another kind is another inventory row, and would move the identity to it).
  for (const kind of ENROLL_EK_KINDS) {
    const ek = await getEndorsementKey(scope, kind);
    const hash = ekPubHash(ek.public);
    if (hash === choice.ekPubHash) {
      return { kind, ek, hash };
    }
    await flushTransient(scope, ek);
  }
  throw new EkNotFoundError(choice.ekPubHash);
}

/**
 * Frees a transient object's slot (a persisted EK stays): a PC Client TPM need hold no more than
 * three transient objects (TCG PC Client Platform TPM Profile, minimum loaded objects), and a key
 * certification needs the AK, the storage primary and the new key at once.
 */
export async function flushTransient(scope: TpmScope, object: LoadedObject): Promise<void> {
  if (object.handle >>> 24 === TPM_HT.TPM_HT_TRANSIENT) {
    await scope.flush(object.handle);
  }
}
