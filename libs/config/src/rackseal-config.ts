import type { LogLevel, MasterKeyProviderKind, RacksealEnvironment } from './config.schema';
import type { SecretBytes } from './secret-bytes';

/** The validated configuration; built once at boot, nothing reads process.env after that. */
export interface RacksealConfig {
  readonly env: RacksealEnvironment;
  readonly database: {
    readonly url: string;
    readonly poolSize: number;
    readonly migrationsAtBoot: boolean;
  };
  readonly redis: {
    /** REDIS_URL: the one Redis, or (with clusterNodes) only its scheme and credentials. */
    readonly url: string;
    /** REDIS_CLUSTER_NODES: the seed nodes of a Redis Cluster, or null (one Redis at `url`). */
    readonly clusterNodes: readonly { readonly host: string; readonly port: number }[] | null;
    /**
     * `{QUEUE_PREFIX}`: the prefix of every rackseal key and channel in Redis (BullMQ's `prefix`,
     * pub/sub channels, rate-limit buckets). The braces make it a Redis Cluster hash tag, so every
     * key hashes to one slot, as BullMQ's multi-key scripts need (docs/guide/hardening.md).
     */
    readonly keyPrefix: string;
  };
  readonly http: {
    readonly host: string;
    readonly port: number;
    /** TLS_CERT_FILE and TLS_KEY_FILE, or null: plain HTTP. */
    readonly tls: { readonly certFile: string; readonly keyFile: string } | null;
    /** Token buckets shared by the replicas in Redis; a rate of 0 turns that limit off. */
    readonly rateLimit: {
      readonly addressPerSecond: number;
      readonly credentialPerSecond: number;
      readonly burstSeconds: number;
    };
  };
  readonly masterKey: {
    /** MASTER_KEY_PROVIDER: where the current master key lives (libs/master-keys builds it). */
    readonly provider: MasterKeyProviderKind;
    /** env: RACKSEAL_MASTER_KEY (or the development key); null under pkcs11. */
    readonly key: SecretBytes | null;
    /** True when demo/test fell back to the public development key. */
    readonly isDevelopmentKey: boolean;
    /** The token (set with MASTER_KEY_PROVIDER=pkcs11 or PKCS11_KEY_LABEL_PREVIOUS, else null). */
    readonly pkcs11: {
      readonly module: string;
      readonly tokenLabel: string;
      readonly pin: SecretBytes;
      /** PKCS11_KEY_LABEL: the current key's label under pkcs11. */
      readonly keyLabel: string;
    } | null;
    /** The keys a rotation moves away from (still opened until `master-key rotate` is done). */
    readonly previous: {
      readonly key: SecretBytes | null;
      readonly pkcs11KeyLabel: string | null;
    };
  };
  readonly logLevel: LogLevel;
  readonly readinessTimeoutMs: number;
  /** Grace for expired EK certificates, in days (Infinity: EK expiry ignored). */
  readonly ekCertGraceDays: number;
  readonly attestation: {
    /** How long a registration may be finished after it was started (libs/attestation). */
    readonly registrationTtlMs: number;
  };
  readonly inventory: {
    readonly maxFileBytes: number;
    readonly uploadIdleTimeoutMs: number;
    readonly maxConcurrentImports: number;
  };
  readonly worker: {
    readonly concurrency: number;
    readonly shutdownGraceMs: number;
    readonly lockDurationMs: number;
  };
  readonly metrics: {
    /** METRICS_PORT: this process's own Prometheus listener; 0 = none (the control plane then serves /metrics on its API port). */
    readonly port: number;
    readonly host: string;
  };
  readonly machines: {
    /** A machine not attested for longer is counted as not attested within the interval (/metrics). */
    readonly attestationIntervalMs: number;
  };
  readonly deliveries: {
    /** A delivery not acknowledged this long after it was planned expires (libs/deliveries' reconciler). */
    readonly expiryMs: number;
    /** Period of the reconciler's job scheduler. */
    readonly reconcileIntervalMs: number;
    /** Period of the rotation check's job scheduler (secrets due for a new version). */
    readonly rotationCheckIntervalMs: number;
  };
  readonly audit: {
    /** Origin line of signed checkpoints and name of the signing key. */
    readonly origin: string;
    readonly maxMergeDelayMs: number;
    /** Ed25519 seed from config; null: generated and stored envelope-encrypted. */
    readonly signingKeySeed: SecretBytes | null;
  };
}

/** Injection token for RacksealConfig. */
export const RACKSEAL_CONFIG = Symbol('RACKSEAL_CONFIG');
