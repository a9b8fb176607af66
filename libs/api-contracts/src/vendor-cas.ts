/**
 * The vendor CA surface of the operator API (docs/architecture.md §4.1): POST/GET /v1/vendor-cas and
 * the enable/disable/anchor changes. libs/vendor-cas stores and checks what these describe.
 */

/**
 * root: self-signed with cA = TRUE. intermediate: cA = TRUE and not self-signed (cross-signed vendor
 * roots included).
 */
export const CA_KINDS = ['root', 'intermediate'] as const;
export type CaKind = (typeof CA_KINDS)[number];

/** What became of one certificate of an upload. */
export const VENDOR_CA_ADD_STATUSES = ['added', 'duplicate', 'rejected'] as const;
export type VendorCaAddStatus = (typeof VENDOR_CA_ADD_STATUSES)[number];

/** A duplicate is of a CA already `stored`, or of one seen earlier in the same `upload`. */
export const VENDOR_CA_DUPLICATE_OF = ['stored', 'upload'] as const;
export type VendorCaDuplicateOf = (typeof VENDOR_CA_DUPLICATE_OF)[number];

/** Upload limits: a vendor CA is 1-5 KB; these leave room for any real bundle and stay under the 1 MB body limit. */
export const MAX_UPLOAD_FILES = 200;
export const MAX_FILE_CHARS = 65_536;
export const MAX_PEM_CHARS = 512 * 1024;
/** The longest `source` (a file name) kept with a CA. */
export const MAX_CA_SOURCE_LENGTH = 255;
/** Shorter fingerprint prefixes would be ambiguous too often to be worth typing, and are refused. */
export const MIN_FINGERPRINT_PREFIX = 8;

/** One file of a directory upload. */
export interface VendorCaFile {
  /** The file name, kept as the CA's source. */
  readonly name: string;
  /** PEM text (one or many certificates) or base64 of DER. */
  readonly content: string;
}

/** POST /v1/vendor-cas: exactly one of `pem` (a pasted bundle) or `files` (a directory upload). */
export interface AddVendorCasRequest {
  readonly pem?: string;
  readonly files?: readonly VendorCaFile[];
  /** Label for a `pem` upload. */
  readonly source?: string;
  /** Pin every intermediate of this upload as a trust anchor. */
  readonly anchor?: boolean;
}

/** Why an intermediate does (not) chain to an enabled anchor, right after the upload. Informational. */
export type VendorCaChainStatus =
  | { readonly ok: true; readonly anchor: string; readonly anchorFingerprint: string }
  | { readonly ok: false; readonly reason: string; readonly message: string };

export interface VendorCaAddResult {
  readonly status: VendorCaAddStatus;
  /** The upload this certificate came from. */
  readonly source: string | null;
  /** 1-based position of the certificate in its upload (PEM bundles hold several). */
  readonly position: number;
  /** Lowercase hex SHA-256 of the DER. */
  readonly fingerprint: string;
  readonly subject: string;
  readonly kind?: CaKind;
  /** For added and duplicate: whether the stored CA is an anchor / enabled. */
  readonly anchor?: boolean;
  readonly enabled?: boolean;
  readonly duplicateOf?: VendorCaDuplicateOf;
  /** For rejected: `not-a-ca` | `unsupported-key`, and a sentence. */
  readonly reason?: string;
  readonly message?: string;
  /** For added/duplicate intermediates that are not anchors. */
  readonly chain?: VendorCaChainStatus;
}

/** POST /v1/vendor-cas: one result per certificate, and the totals. */
export interface VendorCaAddSummary {
  readonly results: readonly VendorCaAddResult[];
  readonly added: number;
  readonly duplicate: number;
  readonly rejected: number;
}

/** A stored CA as listed (no DER). Instants are ISO 8601 on the wire, Dates inside the server. */
export interface VendorCaSummary<Time = string> {
  readonly id: string;
  readonly fingerprint: string;
  readonly subject: string;
  readonly issuer: string;
  /** Hex of the serial number as encoded. */
  readonly serial: string;
  readonly notBefore: Time;
  readonly notAfter: Time;
  readonly kind: CaKind;
  /** Chains may end here (roots, pinned intermediates). */
  readonly anchor: boolean;
  readonly enabled: boolean;
  readonly source: string | null;
  readonly addedAt: Time;
  readonly addedBy: string;
  readonly disabledAt: Time | null;
  readonly disabledBy: string | null;
}

/** PATCH answers: `changed` is false when the CA was already in the requested state (nothing written). */
export interface VendorCaChange<Time = string> {
  readonly changed: boolean;
  readonly ca: VendorCaSummary<Time>;
}

/** PATCH /v1/vendor-cas/:ref/anchor. */
export interface SetAnchorRequest {
  readonly anchor: boolean;
}
