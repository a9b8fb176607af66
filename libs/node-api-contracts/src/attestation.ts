/**
 * The enrollment protocol (issue 12 items 1-2, docs/architecture.md §4.3): two calls of the node API.
 *
 *   POST /node/v1/attestations               StartAttestationRequest  → StartAttestationResponse
 *   POST /node/v1/attestations/:id/finish    FinishAttestationRequest → FinishAttestationResponse
 *
 * Binary fields travel as standard base64 (RFC 4648 §4, with padding) of the TPM structure named
 * (TPM 2.0 Library Part 2), marshalled as the TPM and tpm2-tools write it. The limits below are
 * what the control plane refuses above, before decoding.
 */

/** Route of the start call, below the node API base path (nodeApiPath). */
export const ATTESTATIONS_ROUTE = 'attestations';

/** Route of the finish call for registration `id`, below the node API base path. */
export function finishAttestationRoute(id: string): string {
  return `${ATTESTATIONS_ROUTE}/${encodeURIComponent(id)}/finish`;
}

/** Limits, in bytes of the decoded value. */
export const ATTESTATION_LIMITS = {
  /** One DER certificate (EK certificates are 1-2 KiB; RSA-4096 chains stay far below). */
  certificateBytes: 8192,
  /** Intermediates an agent may send with its EK certificate (as many as the TPM's NV holds, in practice 1-3). */
  intermediates: 8,
  /** A TPM2B_PUBLIC (an RSA-4096 key with a policy is under 700 bytes). */
  publicAreaBytes: 1024,
  /** TPMS_ATTEST of a quote (a quote over every PCR of four banks is under 300 bytes). */
  attestBytes: 1024,
  /** TPMT_SIGNATURE (RSA-4096: 518 bytes). */
  signatureBytes: 1024,
  /** Concatenated PCR values (24 PCRs of SHA-512 in four banks is 6 KiB). */
  pcrValuesBytes: 8192,
  /** The machine's TCG event log (real firmware logs are 10-80 KiB). */
  eventLogBytes: 1024 * 1024,
  /** An activation proof: one HMAC-SHA256 output (libs/node-identity). */
  activationProofBytes: 32,
  /** The nonce the control plane issues. */
  nonceBytes: 32,
  /**
   * The IMA entries of one finish (binary_runtime_measurements bytes from `ImaRequestWire.fromEntry`
   * on): a first round of a busy server (~50,000 entries of 100-200 bytes) fits; an agent whose
   * window is larger says so and sends nothing (docs/decisions.md, "Runtime integrity in attestation").
   */
  imaEntriesBytes: 8 * 1024 * 1024,
} as const;

/** The largest JSON body the finish call takes: the event log and the IMA entries in base64 plus the rest, with room. */
export const FINISH_ATTESTATION_BODY_LIMIT_BYTES = Math.ceil((ATTESTATION_LIMITS.eventLogBytes * 4) / 3) + Math.ceil((ATTESTATION_LIMITS.imaEntriesBytes * 4) / 3) + 64 * 1024;

export interface StartAttestationRequest {
  /**
   * The EK certificate (DER) the TPM holds. Give it, or `ekPublic` (for an inventory row without a
   * certificate), or both — then the certificate's key must be the EK public's.
   */
  readonly ekCertificate?: string;
  /** Intermediates (DER) the TPM holds for the EK certificate, at most ATTESTATION_LIMITS.intermediates. */
  readonly ekIntermediates?: readonly string[];
  /** The EK's TPM2B_PUBLIC. */
  readonly ekPublic?: string;
  /** The AK's TPM2B_PUBLIC: a restricted signing key created under the EK. */
  readonly akPublic: string;
}

/** A PCR selection: one bank (as tpm2-tools names it, `sha256`) and its PCRs, ascending. */
export interface PcrSelectionWire {
  readonly bank: string;
  readonly pcrs: readonly number[];
}

export interface StartAttestationResponse {
  /** The registration to finish (a UUID). */
  readonly registrationId: string;
  /** TPM2B_ID_OBJECT: TPM2_MakeCredential's credentialBlob for the EK and the AK's Name. */
  readonly credentialBlob: string;
  /** TPM2B_ENCRYPTED_SECRET: TPM2_MakeCredential's secret. */
  readonly encryptedSecret: string;
  /** 32 bytes, base64: the quote's qualifyingData. */
  readonly nonce: string;
  /** What to quote, exactly: a narrower or wider quote is refused. */
  readonly pcrSelection: PcrSelectionWire;
  /** ISO 8601 UTC: the finish call must arrive before this. */
  readonly deadline: string;
  /**
   * Present when the machine's group has a runtime policy: the selection then holds PCR 10 and the
   * finish call must carry `ima`, the entries of the measurement list from `fromEntry` on.
   */
  readonly ima?: ImaRequestWire;
}

/** What the server asks of the machine's IMA measurement list in one round. */
export interface ImaRequestWire {
  /** The first entry to send: what the server has verified so far, 0 for the whole list. */
  readonly fromEntry: number;
}

/**
 * Template-hash algorithms of IMA measurement lists: `sha1` for binary_runtime_measurements, the
 * bank's for the per-bank lists binary_runtime_measurements_<bank> that kernels with IMA's
 * template-hash crypto agility write, one per allocated PCR bank (security/integrity/ima/ima_fs.c).
 * The banks IMA extends that a verifier can recompute.
 */
export const IMA_TEMPLATE_HASH_ALGORITHMS = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
export type ImaTemplateHashAlgorithm = (typeof IMA_TEMPLATE_HASH_ALGORITHMS)[number];

/** Whether `value` is one of IMA_TEMPLATE_HASH_ALGORITHMS (a bank name from the wire, checked before use). */
export function isImaTemplateHashAlgorithm(value: unknown): value is ImaTemplateHashAlgorithm {
  return typeof value === 'string' && (IMA_TEMPLATE_HASH_ALGORITHMS as readonly string[]).includes(value);
}

/** The IMA entries a finish carries (only with a start answer's `ima`). */
export interface ImaMeasurementsWire {
  /** Index of the first entry sent: the start answer's `fromEntry`. */
  readonly firstEntry: number;
  /**
   * binary_runtime_measurements (security/integrity/ima/ima_fs.c) bytes of the entries from
   * `firstEntry` on, read after the quote was made; empty when there are none. At most
   * ATTESTATION_LIMITS.imaEntriesBytes.
   */
  readonly entries: string;
  /**
   * The algorithm of the entries' template-hash field: the bank's when the agent sent the per-bank
   * list binary_runtime_measurements_<bank> of the quote's bank. Absent (agents before it, or the
   * configured list sent as it is): the group's runtime policy's `ima.log_hash_alg`, sha1 unless the
   * policy says otherwise (docs/decisions.md, "Per-bank IMA lists").
   */
  readonly templateHashAlgorithm?: ImaTemplateHashAlgorithm;
}

export interface QuoteWire {
  /** TPMS_ATTEST bytes as signed (`tpm2_quote -m`). */
  readonly attest: string;
  /** TPMT_SIGNATURE (`tpm2_quote -s`). */
  readonly signature: string;
}

export interface FinishAttestationRequest {
  /** activationProof(secret, registrationId, nonce) from libs/node-identity: never the secret. */
  readonly activationProof: string;
  readonly quote: QuoteWire;
  /** The quoted PCR values concatenated in selection order (`tpm2_quote -o … -F values`). */
  readonly pcrValues: string;
  /** The TCG event log (binary_bios_measurements), when the machine has one. */
  readonly eventLog?: string;
  /** The IMA entries asked for by the start answer's `ima`. */
  readonly ima?: ImaMeasurementsWire;
}

/** How the group's runtime policy judged the IMA entries of a finish. */
export interface ImaOutcomeWire {
  /** `pass`, or `fail` in a `warn` group (the machine is attested, the failures recorded). */
  readonly decision: 'pass' | 'fail';
  /** Entries the server replayed and judged in this round. */
  readonly entriesChecked: number;
  /** The entry the next round starts from (0: the whole list again). */
  readonly nextEntry: number;
  /** One line per failed entry: index, file, digest, rule (bounded). */
  readonly failures: readonly string[];
}

/** How the group's PCR policy judged the quote. */
export interface PolicyOutcomeWire {
  /** `match`, or `mismatch` in a `warn` group (the machine is attested, the drift recorded). */
  readonly decision: 'match' | 'mismatch';
  readonly matchedSet?: string;
  /** What the machine's record shows: one line per differing PCR and per diverging event. */
  readonly summary: readonly string[];
}

export interface FinishAttestationResponse {
  readonly machineId: string;
  /** Always `attested` on success: every other outcome is a refusal with an `attestation.*` code. */
  readonly state: 'attested';
  /** The node credential's public ID; both sides derive the key from the activated secret. */
  readonly credentialId: string;
  /** ISO 8601 UTC. */
  readonly attestedAt: string;
  readonly policy: PolicyOutcomeWire;
  /** Present when the group has a runtime policy. */
  readonly ima?: ImaOutcomeWire;
}
