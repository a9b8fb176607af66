import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { SecretBytes } from './secret-bytes';

/** Why a single variable was refused; the loader adds the variable's name. */
export class InvalidValue extends Error {}

export interface VariableSpec<T> {
  readonly name: string;
  readonly description: string;
  /** Shown in docs; `undefined` means the variable has no default. */
  readonly defaultText?: string;
  /** Secrets are never echoed back in error messages. */
  readonly secret?: boolean;
  /**
   * Turns the raw text (undefined when unset) into the typed value or throws InvalidValue. `all` is
   * the whole environment, for the few variables another one makes required (MASTER_KEY_PROVIDER).
   */
  parse(raw: string | undefined, env: RacksealEnvironment, all: NodeJS.ProcessEnv): T;
}

export const ENVIRONMENTS = ['production', 'demo', 'test'] as const;
export type RacksealEnvironment = (typeof ENVIRONMENTS)[number];

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/**
 * A fixed, publicly known key for demo and test runs only. It exists so that several processes of
 * one demo share a key without anybody typing one; production refuses to start without a real key.
 */
export const DEVELOPMENT_MASTER_KEY = createHash('sha256')
  .update('rackseal insecure development master key - never use in production')
  .digest();

function integer(min: number, max: number, fallback: number) {
  return (raw: string | undefined): number => {
    if (raw === undefined || raw === '') {
      return fallback;
    }
    if (!/^-?\d+$/.test(raw.trim())) {
      throw new InvalidValue(`must be an integer between ${min} and ${max}`);
    }
    const value = Number(raw.trim());
    if (value < min || value > max) {
      throw new InvalidValue(`must be an integer between ${min} and ${max}`);
    }
    return value;
  };
}

/** One Redis node address: a host name, an IPv4 address or a bracketed IPv6 address, and a port. */
const REDIS_NODE = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))$/;

/** `host:port,host:port` (REDIS_CLUSTER_NODES), or null when unset. */
function redisNodes(raw: string | undefined): readonly { readonly host: string; readonly port: number }[] | null {
  if (raw === undefined || raw.trim() === '') {
    return null;
  }
  return raw.split(',').map((entry) => {
    const text = entry.trim();
    const colon = text.lastIndexOf(':');
    const host = text.slice(0, colon);
    const port = text.slice(colon + 1);
    if (colon <= 0 || !REDIS_NODE.test(host) || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
      throw new InvalidValue(`must be a comma-separated list of host:port (port 1-65535)`);
    }
    // ioredis connects to an IPv6 address without its brackets.
    return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(port) };
  });
}

function boolean(fallback: boolean) {
  return (raw: string | undefined): boolean => {
    if (raw === undefined || raw === '') {
      return fallback;
    }
    const normalized = raw.trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(normalized)) {
      return true;
    }
    if (['0', 'false', 'no', 'off'].includes(normalized)) {
      return false;
    }
    throw new InvalidValue('must be true or false');
  };
}

function url(protocols: readonly string[], fallback: string) {
  return (raw: string | undefined): string => {
    const value = raw === undefined || raw === '' ? fallback : raw.trim();
    let parsed: URL;
    try {
      parsed = new URL(value);
    } catch {
      throw new InvalidValue(`must be a URL starting with ${protocols.join(' or ')}`);
    }
    if (!protocols.includes(parsed.protocol)) {
      throw new InvalidValue(`must be a URL starting with ${protocols.join(' or ')}`);
    }
    if (parsed.hostname === '') {
      throw new InvalidValue('must name a host');
    }
    return value;
  };
}

function oneOf<T extends string>(choices: readonly T[], fallback: T) {
  return (raw: string | undefined): T => {
    if (raw === undefined || raw === '') {
      return fallback;
    }
    const value = raw.trim() as T;
    if (!choices.includes(value)) {
      throw new InvalidValue(`must be one of ${choices.join(', ')}`);
    }
    return value;
  };
}

/** 32 bytes written as 64 hex characters or as base64. */
function thirtyTwoBytes(raw: string): Buffer {
  const text = raw.trim();
  let bytes: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(text)) {
    bytes = Buffer.from(text, 'hex');
  } else if (/^[A-Za-z0-9+/]{43}=?$/.test(text)) {
    bytes = Buffer.from(text, 'base64');
  }
  if (bytes === undefined || bytes.length !== 32) {
    throw new InvalidValue('must be exactly 32 bytes written as 64 hex characters or base64');
  }
  return bytes;
}

/** A production master key with fewer distinct byte values than this is refused as not random. */
const MIN_DISTINCT_KEY_BYTES = 16;

export const MASTER_KEY_PROVIDERS = ['env', 'pkcs11'] as const;
export type MasterKeyProviderKind = (typeof MASTER_KEY_PROVIDERS)[number];

/** The provider MASTER_KEY_PROVIDER names; an invalid one is reported by its own variable. */
function providerOf(all: NodeJS.ProcessEnv): string {
  return (all.MASTER_KEY_PROVIDER ?? '').trim() || 'env';
}

/** Whether the PKCS#11 module, token and PIN are needed: the pkcs11 provider, or a previous key on the token. */
function needsToken(all: NodeJS.ProcessEnv): boolean {
  // A malformed previous label is reported by itself, not with three missing token variables besides.
  return providerOf(all) === 'pkcs11' || LABEL_TEXT.test(all.PKCS11_KEY_LABEL_PREVIOUS ?? '');
}

/** What a PKCS#11 label may hold here: printable ASCII, no padding spaces at either end. */
const LABEL_TEXT = /^[\x21-\x7e](?:[\x20-\x7e]{0,126}[\x21-\x7e])?$/;

/** A PKCS#11 label (CKA_LABEL, or the token label of CK_TOKEN_INFO): printable ASCII, `max` characters at most. */
function label(max: number, required: (all: NodeJS.ProcessEnv) => string | undefined, fallback: string | null = null) {
  return (raw: string | undefined, _env: RacksealEnvironment, all: NodeJS.ProcessEnv): string | null => {
    if (raw === undefined || raw === '') {
      const why = required(all);
      if (why !== undefined) {
        throw new InvalidValue(`is required ${why}`);
      }
      return fallback;
    }
    if (!LABEL_TEXT.test(raw) || raw.length > max) {
      throw new InvalidValue(`must be 1-${max} printable ASCII characters without leading or trailing spaces`);
    }
    return raw;
  };
}

const TOKEN_NEEDED = (all: NodeJS.ProcessEnv): string | undefined =>
  needsToken(all) ? 'with MASTER_KEY_PROVIDER=pkcs11 or PKCS11_KEY_LABEL_PREVIOUS' : undefined;

function masterKey(raw: string | undefined, env: RacksealEnvironment, all: NodeJS.ProcessEnv): SecretBytes | null {
  if (raw === undefined || raw === '') {
    if (env === 'production' && providerOf(all) === 'env') {
      throw new InvalidValue(
        'is required in production: 32 random bytes as 64 hex characters or base64 (e.g. `openssl rand -hex 32`)',
      );
    }
    return null;
  }
  const bytes = thirtyTwoBytes(raw);
  if (bytes.equals(DEVELOPMENT_MASTER_KEY) && env === 'production') {
    throw new InvalidValue('is the public development key, which production refuses');
  }
  if (env === 'production' && new Set(bytes).size < MIN_DISTINCT_KEY_BYTES) {
    // 32 random bytes have about 30 distinct values; fewer than 16 happens by chance with
    // probability below 1e-15. What does: 64 zeros, a repeated "ab", a placeholder pasted as is.
    throw new InvalidValue(
      `is not random: it has only ${new Set(bytes).size} distinct byte values (a placeholder?); use 32 random bytes, e.g. \`openssl rand -hex 32\``,
    );
  }
  return new SecretBytes(bytes);
}

/**
 * A PEM file the process reads at boot (TLS_CERT_FILE, TLS_KEY_FILE): an absolute path to a file
 * that exists. That the two are set together is checked by loadConfigSections, once both parsed.
 */
function pemFile(raw: string | undefined): string | null {
  if (raw === undefined || raw.trim() === '') {
    return null;
  }
  const path = raw.trim();
  if (!isAbsolute(path) || path.includes('\0')) {
    throw new InvalidValue('must be an absolute path');
  }
  if (!existsSync(path)) {
    throw new InvalidValue('must name an existing file');
  }
  return path;
}

/** Every variable rackseal reads, in the order the README's configuration table lists them. */
export const CONFIG_VARIABLES = {
  env: {
    name: 'RACKSEAL_ENV',
    description: 'production, demo or test. Only demo and test may run without RACKSEAL_MASTER_KEY.',
    defaultText: 'production',
    parse: oneOf(ENVIRONMENTS, 'production'),
  },
  databaseUrl: {
    name: 'DATABASE_URL',
    description: 'PostgreSQL connection URL.',
    defaultText: 'postgres://postgres@127.0.0.1:5432/rackseal',
    parse: url(['postgres:', 'postgresql:'], 'postgres://postgres@127.0.0.1:5432/rackseal'),
  },
  databasePoolSize: {
    name: 'DATABASE_POOL_SIZE',
    description: 'Connections per process in the PostgreSQL pool.',
    defaultText: '10',
    parse: integer(1, 200, 10),
  },
  migrationsAtBoot: {
    name: 'MIGRATIONS_AT_BOOT',
    description: 'Run pending migrations when a control plane or worker boots, under a PostgreSQL advisory lock so N replicas may start together.',
    defaultText: 'true',
    parse: boolean(true),
  },
  redisUrl: {
    name: 'REDIS_URL',
    description: 'Redis connection URL (BullMQ queues, delivery notifications, rate limits). With REDIS_CLUSTER_NODES, only its scheme and credentials are used.',
    defaultText: 'redis://127.0.0.1:6379',
    parse: url(['redis:', 'rediss:'], 'redis://127.0.0.1:6379'),
  },
  redisClusterNodes: {
    name: 'REDIS_CLUSTER_NODES',
    description:
      'Seed nodes of a Redis Cluster, `host:port,host:port` (any reachable masters or replicas; the client learns the rest and follows MOVED redirections and failovers). When set, rackseal talks Redis Cluster to them and uses only the scheme (`rediss:` for TLS), user name and password of `REDIS_URL`, whose host is ignored and whose database must be 0. Unset: `REDIS_URL` names one Redis (docs/guide/hardening.md).',
    parse: redisNodes,
  },
  queuePrefix: {
    name: 'QUEUE_PREFIX',
    description:
      'Name of every rackseal key and channel in Redis, used as a Redis Cluster hash tag: BullMQ queues, pub/sub channels and rate-limit buckets all live under `{QUEUE_PREFIX}:` (so one slot holds them all and BullMQ runs on Redis Cluster); separate deployments sharing one Redis need distinct names.',
    defaultText: 'rackseal',
    parse: (raw: string | undefined): string => {
      const value = raw === undefined || raw === '' ? 'rackseal' : raw.trim();
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
        throw new InvalidValue('must be 1-64 characters of letters, digits, dot, dash or underscore');
      }
      return value;
    },
  },
  host: {
    name: 'HOST',
    description: 'Address the control plane listens on.',
    defaultText: '0.0.0.0',
    parse: (raw: string | undefined): string => {
      const value = raw === undefined || raw === '' ? '0.0.0.0' : raw.trim();
      if (!/^[A-Za-z0-9.:[\]-]+$/.test(value)) {
        throw new InvalidValue('must be a host name or IP address');
      }
      return value;
    },
  },
  port: {
    name: 'PORT',
    description: 'TCP port of the control plane HTTP API (0 picks a free port).',
    defaultText: '8080',
    parse: integer(0, 65535, 8080),
  },
  tlsCertFile: {
    name: 'TLS_CERT_FILE',
    description:
      'PEM certificate chain the control plane serves HTTPS with (the server certificate first, then its intermediates). Set together with TLS_KEY_FILE; both unset, the control plane serves plain HTTP (behind a TLS-terminating proxy only).',
    parse: pemFile,
  },
  tlsKeyFile: {
    name: 'TLS_KEY_FILE',
    description: 'PEM private key of TLS_CERT_FILE (readable by the control plane only). Set together with TLS_CERT_FILE.',
    parse: pemFile,
  },
  rateLimitAddressPerSecond: {
    name: 'RATE_LIMIT_ADDRESS_PER_SECOND',
    description:
      'Requests per second one client address may send to the node and operator APIs, across every control plane replica (a token bucket in Redis holding RATE_LIMIT_BURST_SECONDS of it); over it: 429 request.rate-limited with Retry-After. Counts enrollment calls and refused ones too. 0 turns the limit off.',
    defaultText: '500',
    parse: integer(0, 1000000, 500),
  },
  rateLimitCredentialPerSecond: {
    name: 'RATE_LIMIT_CREDENTIAL_PER_SECOND',
    description:
      'Requests per second one authenticated credential (an operator token, or a machine\'s node credential) may send, across every replica, like RATE_LIMIT_ADDRESS_PER_SECOND. 0 turns the limit off.',
    defaultText: '50',
    parse: integer(0, 1000000, 50),
  },
  rateLimitBurstSeconds: {
    name: 'RATE_LIMIT_BURST_SECONDS',
    description: 'How many seconds of its rate a client may send at once after being idle (the bucket\'s size); a fleet rebooting together spends it.',
    defaultText: '10',
    parse: integer(1, 3600, 10),
  },
  masterKeyProvider: {
    name: 'MASTER_KEY_PROVIDER',
    description:
      'Where the master key (the key-encryption key of secrets at rest) lives: env (RACKSEAL_MASTER_KEY, in process memory) or pkcs11 (a non-extractable AES-256 key on a PKCS#11 token, which wraps and unwraps the data keys itself).',
    defaultText: 'env',
    parse: oneOf(MASTER_KEY_PROVIDERS, 'env'),
  },
  masterKey: {
    name: 'RACKSEAL_MASTER_KEY',
    description:
      'Envelope key for secrets at rest with MASTER_KEY_PROVIDER=env: 32 bytes as hex or base64. Required in production; demo and test fall back to a public development key.',
    secret: true,
    parse: masterKey,
  },
  pkcs11Module: {
    name: 'PKCS11_MODULE',
    description: 'Absolute path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so). Required with MASTER_KEY_PROVIDER=pkcs11 or PKCS11_KEY_LABEL_PREVIOUS.',
    parse: (raw: string | undefined, _env: RacksealEnvironment, all: NodeJS.ProcessEnv): string | null => {
      if (raw === undefined || raw === '') {
        const why = TOKEN_NEEDED(all);
        if (why !== undefined) {
          throw new InvalidValue(`is required ${why}`);
        }
        return null;
      }
      if (!isAbsolute(raw) || raw.includes('\0')) {
        throw new InvalidValue('must be an absolute path');
      }
      if (!existsSync(raw)) {
        throw new InvalidValue('must name an existing file');
      }
      return raw;
    },
  },
  pkcs11TokenLabel: {
    name: 'PKCS11_TOKEN_LABEL',
    description: 'Label of the PKCS#11 token holding the master key (at most 32 characters). Required with MASTER_KEY_PROVIDER=pkcs11 or PKCS11_KEY_LABEL_PREVIOUS.',
    parse: label(32, TOKEN_NEEDED),
  },
  pkcs11Pin: {
    name: 'PKCS11_PIN',
    description: 'User PIN of that token. Required with MASTER_KEY_PROVIDER=pkcs11 or PKCS11_KEY_LABEL_PREVIOUS; never logged or echoed.',
    secret: true,
    parse: (raw: string | undefined, _env: RacksealEnvironment, all: NodeJS.ProcessEnv): SecretBytes | null => {
      if (raw === undefined || raw === '') {
        const why = TOKEN_NEEDED(all);
        if (why !== undefined) {
          throw new InvalidValue(`is required ${why}`);
        }
        return null;
      }
      if (!/^[\x20-\x7e]{1,255}$/.test(raw)) {
        throw new InvalidValue('must be 1-255 printable ASCII characters');
      }
      return new SecretBytes(Buffer.from(raw, 'ascii'));
    },
  },
  pkcs11KeyLabel: {
    name: 'PKCS11_KEY_LABEL',
    description: 'CKA_LABEL of the master key on the token (created once by `rackseal master-key init`).',
    defaultText: 'rackseal-master-key',
    parse: label(128, () => undefined, 'rackseal-master-key'),
  },
  masterKeyPrevious: {
    name: 'RACKSEAL_MASTER_KEY_PREVIOUS',
    description:
      'During a master-key rotation only: the env master key being rotated away from (32 bytes, hex or base64). Blobs still under it keep opening, and `rackseal master-key rotate` re-wraps them to the current key; unset it once the rotation reports done.',
    secret: true,
    parse: (raw: string | undefined): SecretBytes | null => (raw === undefined || raw === '' ? null : new SecretBytes(thirtyTwoBytes(raw))),
  },
  pkcs11KeyLabelPrevious: {
    name: 'PKCS11_KEY_LABEL_PREVIOUS',
    description:
      'During a master-key rotation only: the label of a key on the same token being rotated away from (like RACKSEAL_MASTER_KEY_PREVIOUS, for a pkcs11 key).',
    parse: label(128, () => undefined),
  },
  logLevel: {
    name: 'LOG_LEVEL',
    description: 'fatal, error, warn, info, debug, trace or silent.',
    defaultText: 'info',
    parse: oneOf(LOG_LEVELS, 'info'),
  },
  readinessTimeoutMs: {
    name: 'READINESS_TIMEOUT_MS',
    description: 'How long /health/ready waits for PostgreSQL or Redis before calling it down.',
    defaultText: '2000',
    parse: integer(100, 60000, 2000),
  },
  ekCertGraceDays: {
    name: 'EK_CERT_GRACE_DAYS',
    description:
      'Days an EK certificate may be past its notAfter and still be accepted (many vendor EK certificates outlive their issuers\' policies); "inf" ignores EK expiry. CA expiry is not affected.',
    defaultText: '0',
    parse: (raw: string | undefined): number => {
      if (raw === undefined || raw === '') {
        return 0;
      }
      const text = raw.trim().toLowerCase();
      if (text === 'inf' || text === 'infinity') {
        return Number.POSITIVE_INFINITY;
      }
      if (!/^\d{1,6}$/.test(text)) {
        throw new InvalidValue('must be a whole number of days (0-999999) or "inf"');
      }
      return Number(text);
    },
  },
  attestationRegistrationTtlMs: {
    name: 'ATTESTATION_REGISTRATION_TTL_MS',
    description:
      'How long an attestation registration (the answer to POST /node/v1/attestations) may be finished; a later finish is refused with attestation.registration-expired and the agent starts again. A key certification challenge (POST /node/v1/keys/challenges) lives as long (key.nonce-expired).',
    defaultText: '60000',
    parse: integer(1000, 3600000, 60000),
  },
  workerConcurrency: {
    name: 'WORKER_CONCURRENCY',
    description:
      'Jobs one worker process runs at once per queue. The delivery jobs running at once share their statements (one per batch), so a rotation to a large fleet costs less per delivery with more of them; jobs that open their own transactions (pre-wrap) wait for a DATABASE_POOL_SIZE connection. See docs/decisions.md, "One request per delivery".',
    defaultText: '32',
    parse: integer(1, 256, 32),
  },
  workerShutdownGraceMs: {
    name: 'WORKER_SHUTDOWN_GRACE_MS',
    description:
      'On SIGTERM the worker stops taking jobs and waits this long for running ones; jobs still running after it are left to BullMQ stalled-job recovery, never dropped.',
    defaultText: '30000',
    parse: integer(0, 3600000, 30000),
  },
  workerLockMs: {
    name: 'WORKER_LOCK_MS',
    description: 'BullMQ job lock duration: how soon another worker takes over the jobs of a worker that died.',
    defaultText: '30000',
    parse: integer(1000, 3600000, 30000),
  },
  metricsPort: {
    name: 'METRICS_PORT',
    description:
      'TCP port of this process\'s own Prometheus listener (GET /metrics only, no token), on METRICS_HOST. 0 or unset: the worker serves no metrics and the control plane serves /metrics on its API port (public); set, the control plane serves them only here and its API port answers 404 for /metrics, so the machines\' network never reaches them.',
    defaultText: '0',
    parse: integer(0, 65535, 0),
  },
  metricsHost: {
    name: 'METRICS_HOST',
    description: 'Address the METRICS_PORT listener binds to: loopback by default; an address Prometheus reaches, never one the machines\' network does.',
    defaultText: '127.0.0.1',
    parse: (raw: string | undefined): string => {
      const value = raw === undefined || raw === '' ? '127.0.0.1' : raw.trim();
      if (!/^[A-Za-z0-9.:[\]-]+$/.test(value)) {
        throw new InvalidValue('must be a host name or IP address');
      }
      return value;
    },
  },
  inventoryMaxFileBytes: {
    name: 'INVENTORY_MAX_FILE_BYTES',
    description:
      'Largest inventory CSV one import accepts, in bytes; a larger upload is refused with 413 (by its Content-Length before anything is read, else when the limit is crossed).',
    defaultText: '1073741824',
    parse: integer(1024, 1099511627776, 1073741824),
  },
  inventoryUploadIdleTimeoutMs: {
    name: 'INVENTORY_UPLOAD_IDLE_TIMEOUT_MS',
    description:
      'An inventory upload that sends nothing — or less than 1 KiB/s on average — while the import waits this long is cut off (408, connection closed, nothing imported), so a stalled or trickling client cannot hold a database connection.',
    defaultText: '30000',
    parse: integer(100, 600000, 30000),
  },
  inventoryMaxConcurrentImports: {
    name: 'INVENTORY_MAX_CONCURRENT_IMPORTS',
    description:
      'Inventory imports one control plane runs at once (each holds a database connection); more get 503 with Retry-After. Must be lower than DATABASE_POOL_SIZE so other requests keep a connection (unset, it is at most DATABASE_POOL_SIZE − 1).',
    defaultText: '2',
    parse: integer(1, 100, 2),
  },
  machineAttestationIntervalMs: {
    name: 'MACHINE_ATTESTATION_INTERVAL_MS',
    description:
      'How often a machine must attest when its group has no interval of its own (`rackseal policy set GROUP --interval`): a machine (not revoked) whose last successful attestation is older is counted by /metrics `rackseal_machines_not_attested_within_interval` and listed by `rackseal machines list --overdue`, so a dead agent or verifier is noticed; GET /node/v1/self tells the agent when it is next due.',
    defaultText: '86400000',
    parse: integer(60000, 2678400000, 86400000),
  },
  deliveryExpiryMs: {
    name: 'DELIVERY_EXPIRY_MS',
    description:
      'How long a delivery may stay pending or ready (not acknowledged by its machine) before the worker\'s reconciler expires it (state `expired`, envelope dropped; `rackseal deliveries list --state expired`).',
    defaultText: '604800000',
    parse: integer(60000, 31536000000, 604800000),
  },
  deliveryReconcileIntervalMs: {
    name: 'DELIVERY_RECONCILE_INTERVAL_MS',
    description:
      'How often the worker\'s delivery reconciler runs (one BullMQ job scheduler, however many workers): it enqueues again the job of every pending delivery (a Redis that lost its data), relays outbox rows a missed notification left, and expires deliveries past DELIVERY_EXPIRY_MS.',
    defaultText: '60000',
    parse: integer(1000, 86400000, 60000),
  },
  secretRotationCheckIntervalMs: {
    name: 'SECRET_ROTATION_CHECK_INTERVAL_MS',
    description:
      'How often the worker looks for secrets due for a new version (one BullMQ job scheduler, however many workers): tls and kubelet-client certificates within renewBeforeDays of their end, disk keys older than rotateEveryDays.',
    defaultText: '3600000',
    parse: integer(1000, 86400000, 3600000),
  },
  auditLogOrigin: {
    name: 'AUDIT_LOG_ORIGIN',
    description:
      'The origin line of every signed audit checkpoint (C2SP tlog-checkpoint): a name unique to this deployment\'s log, e.g. `audit.rackseal.example.com/prod` (1-200 printable ASCII characters, no spaces or `+`); also the signing key\'s name, so changing it starts a new key.',
    defaultText: 'rackseal.local/audit',
    parse: (raw: string | undefined): string => {
      const value = raw === undefined || raw === '' ? 'rackseal.local/audit' : raw.trim();
      // A checkpoint origin is one line of printable text; a key name may not hold '+' or spaces (C2SP signed-note).
      if (!/^[\x21-\x2a\x2c-\x7e]{1,200}$/.test(value)) {
        throw new InvalidValue('must be 1-200 printable ASCII characters without spaces or "+"');
      }
      return value;
    },
  },
  auditMaxMergeDelayMs: {
    name: 'AUDIT_MAX_MERGE_DELAY_MS',
    description:
      'Longest a committed audit record may wait before a signed checkpoint covers it (50-3600000 ms); the worker\'s sequencer batches at least this often, and /health/ready reports it degraded when the oldest pending record is older.',
    defaultText: '1000',
    parse: integer(50, 3600000, 1000),
  },
  auditSigningKey: {
    name: 'AUDIT_SIGNING_KEY',
    description:
      'Optional Ed25519 private key (the 32-byte seed, hex or base64) that signs audit checkpoints. Unset, the worker generates one on first use and stores it envelope-encrypted under RACKSEAL_MASTER_KEY.',
    secret: true,
    parse: (raw: string | undefined): SecretBytes | null => (raw === undefined || raw === '' ? null : new SecretBytes(thirtyTwoBytes(raw))),
  },
} as const satisfies Record<string, VariableSpec<unknown>>;
