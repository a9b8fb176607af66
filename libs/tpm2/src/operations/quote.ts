import { TPM_ST } from '../constants';
import { passwordAuth } from '../client/session-auth';
import { tpm2Quote } from '../commands/keys-and-attestation';
import { pcrRead } from '../commands/pcr';
import { TpmAnswerError } from '../commands/tpm-answer-error';
import { pcrDigest } from '../policy/pcr-values';
import type { AttestOf, ParsedAttest } from '../structures/tpms-attest';
import type { TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import { signatureHash, type TPMT_SIGNATURE } from '../structures/tpmt-signature';
import type { LoadedObject } from './loaded-object';
import type { TpmScope } from './tpm-scope';

/** A quote and the PCR values it covers, in the formats `tpm2_quote -m/-s/-o -F values` writes. */
export interface PcrQuote {
  readonly attest: AttestOf<typeof TPM_ST.TPM_ST_ATTEST_QUOTE> & { readonly raw: Buffer };
  /** TPMS_ATTEST bytes: q.msg. */
  readonly message: Buffer;
  readonly signature: TPMT_SIGNATURE;
  /** TPMT_SIGNATURE bytes: q.sig. */
  readonly signatureBytes: Buffer;
  /** One value per selected PCR in selection order; concatenated they are q.pcrs. */
  readonly pcrValues: readonly Buffer[];
  readonly selection: TPML_PCR_SELECTION;
}

export interface QuoteOptions {
  readonly akAuth?: Buffer;
  /** Quote + read again when a PCR changed in between; default 4 attempts. */
  readonly attempts?: number;
}

function isQuote(attest: ParsedAttest): attest is AttestOf<typeof TPM_ST.TPM_ST_ATTEST_QUOTE> & { raw: Buffer } {
  return attest.type === TPM_ST.TPM_ST_ATTEST_QUOTE;
}

/**
 * TPM2_Quote (Part 3 §18.4) of `selection` over `nonce` with the AK's own scheme (inScheme NULL),
 * and the PCR values it signed (PCR_Read, looping past 8 digests). The quote carries only a digest
 * of the values, so the values are read separately; a PCR extended between the two would make them
 * disagree, hence the check that they hash to the quoted pcrDigest, and another try if not.
 */
export async function quotePcrs(
  scope: TpmScope,
  ak: LoadedObject,
  selection: TPML_PCR_SELECTION,
  nonce: Buffer,
  options: QuoteOptions = {},
): Promise<PcrQuote> {
  const client = scope.client;
  const attempts = options.attempts ?? 4;
  for (let attempt = 1; ; attempt += 1) {
    const quoted = await tpm2Quote(client, ak.handle, passwordAuth(options.akAuth), nonce, selection);
    const { values } = await pcrRead(client, selection);
    const { attest, signature, signatureBytes } = quoted;
    if (!isQuote(attest)) {
      throw new TpmAnswerError('TPM2_Quote', `the TPM returned a TPMS_ATTEST of type 0x${attest.type.toString(16)}`);
    }
    const hashAlg = signatureHash(signature);
    if (hashAlg === undefined) {
      throw new TpmAnswerError('TPM2_Quote', 'the quote is unsigned (TPM_ALG_NULL)');
    }
    if (pcrDigest(hashAlg, selection, values).equals(attest.attested.pcrDigest)) {
      return { attest, message: attest.raw, signature, signatureBytes, pcrValues: values, selection };
    }
    if (attempt >= attempts) {
      throw new TpmAnswerError('TPM2_Quote', `PCRs changed between quote and read in each of ${attempts} attempts`);
    }
  }
}
