/**
 * Secrets and cluster CAs on the operator API (issue 13 items 3-4, docs/decisions.md "Secrets and
 * cluster CAs"): POST/GET /v1/secrets, GET /v1/secrets/:name, GET/POST /v1/secrets/:name/versions,
 * POST/GET /v1/cas/:kind, GET /v1/cas/:kind/certificate. No answer ever carries material: it leaves
 * the control plane only wrapped to a machine's TPM (issue 14's deliveries).
 */

/** `tls`, `disk` and `kubelet-client` are per machine; `opaque` is one value for the whole target. */
export const SECRET_KINDS = ['tls', 'disk', 'opaque', 'kubelet-client'] as const;
export type SecretKind = (typeof SECRET_KINDS)[number];

/** How a delivery wraps the material to the machine (issue 13 item 5). */
export const SECRET_BINDINGS = ['certified-key', 'pcr-sealed'] as const;
export type SecretBinding = (typeof SECRET_BINDINGS)[number];

/** Key pairs the server generates for `tls` and `kubelet-client` (ECDSA P-256 by default). */
export const SECRET_KEY_ALGORITHMS = ['ecdsa-p256', 'rsa-2048'] as const;
export type SecretKeyAlgorithm = (typeof SECRET_KEY_ALGORITHMS)[number];

/** `disk` material sizes, in bytes. */
export const DISK_KEY_SIZES = [32, 64] as const;

/** The cluster CAs: `tls` is created on first use (or imported), `kubernetes` only imported. */
export const CLUSTER_CA_KINDS = ['tls', 'kubernetes'] as const;
export type ClusterCaKind = (typeof CLUSTER_CA_KINDS)[number];

/** Secret names: like group names (1-63 characters, lowercase letter or digit first). */
export const SECRET_NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;
export const SECRET_NAME_RULE = 'name must be 1-63 characters: a lowercase letter or digit, then lowercase letters, digits or . _ -';

/** SAN templates' placeholders, replaced per machine. */
export const SAN_PLACEHOLDERS = ['hostname', 'serial', 'group', 'machineId'] as const;
export const MAX_SAN_TEMPLATES = 16;
export const MAX_SAN_TEMPLATE_LENGTH = 253;

/** Certificate validity bounds, in days (825: the CA/Browser Forum's historical maximum). */
export const MIN_VALIDITY_DAYS = 1;
export const MAX_VALIDITY_DAYS = 825;
export const DEFAULT_VALIDITY_DAYS = 90;
export const DEFAULT_RENEW_BEFORE_DAYS = 30;

/**
 * `disk`: a new key every `rotateEveryDays` (the worker's schedule); 0 rotates only on demand. A
 * year by default: often enough that a key copied off a decommissioned disk ages out, rarely enough
 * that a fleet's LUKS keyslots are not churned for nothing.
 */
export const DEFAULT_DISK_ROTATE_EVERY_DAYS = 365;
export const MAX_ROTATE_EVERY_DAYS = 3650;

/** `opaque`: an uploaded value (base64) of at most this many bytes, or a generated one of `size` bytes. */
export const MAX_OPAQUE_BYTES = 64 * 1024;
export const DEFAULT_OPAQUE_SIZE = 32;

/** The longest PEM text (certificate or key) a CA import takes. */
export const MAX_CA_PEM_CHARS = 64 * 1024;

/** Exactly one of `group` and `machine` (a machine id or serial). */
export interface SecretTarget {
  readonly group?: string;
  readonly machine?: string;
}

/**
 * Per kind, what the secret's parameters may hold (all optional unless said):
 * - tls: `sans` (required, 1-16 templates such as `{hostname}.{group}.cluster.internal`),
 *   `validityDays`, `renewBeforeDays`, `keyAlgorithm`;
 * - disk: `size` (32 or 64, default 32), `rotateEveryDays` (0-3650, default 365; 0: on demand only);
 * - opaque: `size` (generated, 1-65536, default 32) — or the request's `value`;
 * - kubelet-client: `server` (required, the API server's https URL), `clusterName` (default
 *   `kubernetes`), `validityDays`, `renewBeforeDays`, `keyAlgorithm`.
 */
export interface SecretParameters {
  readonly sans?: readonly string[];
  readonly validityDays?: number;
  readonly renewBeforeDays?: number;
  readonly keyAlgorithm?: SecretKeyAlgorithm;
  readonly size?: number;
  readonly rotateEveryDays?: number;
  readonly server?: string;
  readonly clusterName?: string;
}

/** POST /v1/secrets. */
export interface CreateSecretRequest {
  readonly name: string;
  readonly kind: SecretKind;
  readonly target: SecretTarget;
  readonly binding: SecretBinding;
  readonly parameters?: SecretParameters;
  /** `opaque` only: the value, base64; absent, the server generates `parameters.size` random bytes. */
  readonly value?: string;
}

/** POST /v1/secrets/:name/versions: a new version (an `opaque` one takes a new `value` or generates one). */
export interface RotateSecretRequest {
  readonly value?: string;
  /** The target group the operator expects: refused (`secret.wrong-group`) when the secret targets another, `secret.invalid` for a machine-targeted secret. */
  readonly group?: string;
  /** The version the operator saw as the latest: refused (`secret.version-changed`, nothing rotated) when another rotation made a newer one first. */
  readonly fromVersion?: number;
}

/** One machine's material of a version, without the material. */
export interface SecretMaterialSummary<Time = string> {
  readonly machineId: string;
  readonly serial: string;
  readonly createdAt: Time;
  /** Certificate kinds: the certificate's serial number (hex), SANs and validity. */
  readonly certificateSerial: string | null;
  readonly notAfter: Time | null;
}

export interface SecretVersionSummary<Time = string> {
  readonly version: number;
  readonly createdAt: Time;
  readonly createdBy: string;
  /** Machines holding material of this version (per-machine kinds; 0 for opaque). */
  readonly machines: number;
}

/** A secret's definition and its latest version: metadata only. */
export interface SecretView<Time = string> {
  readonly id: string;
  readonly name: string;
  readonly kind: SecretKind;
  readonly target: { readonly group: string | null; readonly machineId: string | null; readonly serial: string | null };
  readonly binding: SecretBinding;
  readonly parameters: SecretParameters;
  readonly createdAt: Time;
  readonly createdBy: string;
  readonly latestVersion: SecretVersionSummary<Time>;
  /**
   * Set when a machine that held this shared uploaded value was revoked: the server cannot make up
   * the operator's value, so it waits for `rackseal secrets rotate NAME --value-file` (cleared by it).
   */
  readonly rotationRequired: { readonly since: Time; readonly reason: string } | null;
}

/** GET /v1/secrets/:name/versions: every version, newest first, with its machines. */
export interface SecretVersionDetail<Time = string> extends SecretVersionSummary<Time> {
  /** When every delivery of a newer version was acked; a retired version is never delivered again. */
  readonly retiredAt: Time | null;
  readonly materials: readonly SecretMaterialSummary<Time>[];
}

/** POST /v1/cas/:kind: a CA certificate and its private key, PEM (the key is sealed, never returned). */
export interface ImportClusterCaRequest {
  readonly certificate: string;
  readonly privateKey: string;
}

/** GET /v1/cas/:kind. */
export interface ClusterCaView<Time = string> {
  readonly kind: ClusterCaKind;
  readonly origin: 'created' | 'imported';
  readonly subject: string;
  /** Lowercase hex SHA-256 of the certificate's DER. */
  readonly fingerprint: string;
  readonly keyAlgorithm: string;
  readonly notBefore: Time;
  readonly notAfter: Time;
  readonly createdAt: Time;
  readonly createdBy: string;
  /** The CA certificate, PEM (public: `rackseal ca download` writes it). */
  readonly certificate: string;
}
