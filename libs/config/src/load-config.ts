import { CONFIG_VARIABLES, DEVELOPMENT_MASTER_KEY, InvalidValue, type RacksealEnvironment } from './config.schema';
import type { RacksealConfig } from './rackseal-config';
import { SecretBytes } from './secret-bytes';

export interface ConfigProblem {
  readonly variable: string;
  readonly reason: string;
}

/** Thrown at boot when any variable is missing or invalid; names every bad variable at once. */
export class ConfigError extends Error {
  constructor(readonly problems: readonly ConfigProblem[]) {
    super(
      `Invalid configuration:\n${problems.map((p) => `  - ${p.variable}: ${p.reason}`).join('\n')}`,
    );
    this.name = 'ConfigError';
  }
}

type Specs = typeof CONFIG_VARIABLES;
type Parsed = { [K in keyof Specs]: ReturnType<Specs[K]['parse']> };

function describeRaw(raw: string | undefined, secret: boolean | undefined, name: string): string {
  if (raw === undefined) {
    return ' (not set)';
  }
  if (secret) {
    return ' (value not shown)';
  }
  // Connection URLs may carry a password; keep it out of the message. Up to the LAST '@': a pasted
  // password may itself contain an unencoded '@' or '/', and masking too much is harmless.
  let shown = raw;
  if (name.endsWith('_URL')) {
    shown = raw.replace(/\/\/([^:/@]*):.*@/s, '//$1:***@');
    if (shown === raw && raw.includes('@')) {
      // Not `scheme://user:password@`, yet something before an '@' (`postgres:ops:pw@db`, a missing
      // '//'): all of it may be a password, so only the scheme and what follows the last '@' are shown.
      shown = raw.replace(/^([a-z][a-z0-9+.-]*:(?:\/\/)?)?.*@/is, '$1***@');
    }
  }
  return ` (got ${JSON.stringify(shown.length > 80 ? `${shown.slice(0, 80)}…` : shown)})`;
}

/**
 * The variables behind each section of RacksealConfig. A consumer that needs only some sections
 * (a CLI command that talks to PostgreSQL needs `database`, not the master key) validates only
 * their variables: a missing RACKSEAL_MASTER_KEY must not stop `rackseal token create` in
 * production, while the control plane and the worker, which load every section, still refuse it.
 */
export const CONFIG_SECTIONS = {
  env: ['env'],
  database: ['databaseUrl', 'databasePoolSize', 'migrationsAtBoot'],
  redis: ['redisUrl', 'redisClusterNodes', 'queuePrefix'],
  http: ['host', 'port', 'tlsCertFile', 'tlsKeyFile', 'rateLimitAddressPerSecond', 'rateLimitCredentialPerSecond', 'rateLimitBurstSeconds'],
  masterKey: ['masterKeyProvider', 'masterKey', 'pkcs11Module', 'pkcs11TokenLabel', 'pkcs11Pin', 'pkcs11KeyLabel', 'masterKeyPrevious', 'pkcs11KeyLabelPrevious'],
  logLevel: ['logLevel'],
  readinessTimeoutMs: ['readinessTimeoutMs'],
  ekCertGraceDays: ['ekCertGraceDays'],
  attestation: ['attestationRegistrationTtlMs'],
  inventory: ['inventoryMaxFileBytes', 'inventoryUploadIdleTimeoutMs', 'inventoryMaxConcurrentImports'],
  worker: ['workerConcurrency', 'workerShutdownGraceMs', 'workerLockMs'],
  metrics: ['metricsPort', 'metricsHost'],
  machines: ['machineAttestationIntervalMs'],
  deliveries: ['deliveryExpiryMs', 'deliveryReconcileIntervalMs', 'secretRotationCheckIntervalMs'],
  audit: ['auditLogOrigin', 'auditMaxMergeDelayMs', 'auditSigningKey'],
} as const satisfies { [S in keyof RacksealConfig]: readonly (keyof Specs)[] };

export type ConfigSection = keyof RacksealConfig;

/** RACKSEAL_ENV is always read: it decides what the other variables may be. */
export type PartialConfig<S extends ConfigSection> = Pick<RacksealConfig, S | 'env'>;

const ALL_SECTIONS = Object.keys(CONFIG_SECTIONS) as ConfigSection[];

/**
 * Reads and validates every variable from `env` once. Collects all problems before throwing, so an
 * operator fixes a broken deployment in one pass instead of one variable per restart.
 */
export function loadConfig(env: NodeJS.ProcessEnv): RacksealConfig {
  return loadConfigSections(env, ALL_SECTIONS);
}

/**
 * Like loadConfig, for a consumer that needs only `sections` (plus `env`): only their variables are
 * read and validated, in schema order, and the result holds only those sections.
 */
export function loadConfigSections<S extends ConfigSection>(env: NodeJS.ProcessEnv, sections: readonly S[]): PartialConfig<S> {
  const wanted = new Set<ConfigSection>(['env', ...sections]);
  const keys = new Set<keyof Specs>(
    ALL_SECTIONS.filter((section) => wanted.has(section)).flatMap((section) => CONFIG_SECTIONS[section]),
  );
  const problems: ConfigProblem[] = [];
  const parsed: Partial<Record<keyof Specs, unknown>> = {};

  let environment: RacksealEnvironment = 'production';
  try {
    environment = CONFIG_VARIABLES.env.parse(env[CONFIG_VARIABLES.env.name]);
  } catch (error) {
    problems.push({
      variable: CONFIG_VARIABLES.env.name,
      reason: `${(error as Error).message}${describeRaw(env[CONFIG_VARIABLES.env.name], false, 'RACKSEAL_ENV')}`,
    });
  }

  for (const key of Object.keys(CONFIG_VARIABLES) as (keyof Specs)[]) {
    if (!keys.has(key)) {
      continue;
    }
    const spec: { name: string; secret?: boolean; parse(raw: string | undefined, e: RacksealEnvironment, all: NodeJS.ProcessEnv): unknown } =
      CONFIG_VARIABLES[key];
    const raw = env[spec.name];
    try {
      parsed[key] = spec.parse(raw, environment, env);
    } catch (error) {
      if (!(error instanceof InvalidValue)) {
        throw error;
      }
      if (key !== 'env') {
        problems.push({ variable: spec.name, reason: `${error.message}${describeRaw(raw, spec.secret, spec.name)}` });
      }
    }
  }

  const imports = parsed.inventoryMaxConcurrentImports as number | undefined;
  const pool = parsed.databasePoolSize as number | undefined;
  const importsSet = (env[CONFIG_VARIABLES.inventoryMaxConcurrentImports.name] ?? '') !== '';
  if (!importsSet && imports !== undefined && pool !== undefined) {
    // Unset: the default, but never the whole pool (a pool of 1 or 2 still runs one import at a time).
    parsed.inventoryMaxConcurrentImports = Math.max(1, Math.min(imports, pool - 1));
  } else if (imports !== undefined && pool !== undefined && imports >= pool) {
    // An import holds a connection for its whole transaction: the pool needs one left for everything else.
    problems.push({
      variable: CONFIG_VARIABLES.inventoryMaxConcurrentImports.name,
      reason: `must be lower than ${CONFIG_VARIABLES.databasePoolSize.name} (${pool}) so other requests keep a connection (got ${imports})`,
    });
  }
  const cert = parsed.tlsCertFile as string | null | undefined;
  const key = parsed.tlsKeyFile as string | null | undefined;
  if ((cert === null && typeof key === 'string') || (key === null && typeof cert === 'string')) {
    // Half a TLS setup is refused at boot rather than served as plain HTTP.
    const [missing, given] = cert === null ? ['tlsCertFile', 'tlsKeyFile'] as const : ['tlsKeyFile', 'tlsCertFile'] as const;
    problems.push({ variable: CONFIG_VARIABLES[missing].name, reason: `is required with ${CONFIG_VARIABLES[given].name} (not set)` });
  }
  const redisUrl = parsed.redisUrl as string | undefined;
  if (parsed.redisClusterNodes && redisUrl !== undefined && !['', '/', '/0'].includes(new URL(redisUrl).pathname)) {
    // A cluster has database 0 only (Redis Cluster specification, "Implemented subset"): refused rather than ignored.
    problems.push({ variable: CONFIG_VARIABLES.redisUrl.name, reason: `must name database 0 (or none) with ${CONFIG_VARIABLES.redisClusterNodes.name}: a Redis Cluster has no other${describeRaw(redisUrl, false, CONFIG_VARIABLES.redisUrl.name)}` });
  }
  if (problems.length > 0) {
    throw new ConfigError(problems);
  }
  const values = parsed as Parsed;
  const build: { [K in ConfigSection]: () => RacksealConfig[K] } = {
    env: () => values.env,
    database: () => ({
      url: values.databaseUrl,
      poolSize: values.databasePoolSize,
      migrationsAtBoot: values.migrationsAtBoot,
    }),
    redis: () => ({ url: values.redisUrl, clusterNodes: values.redisClusterNodes, keyPrefix: `{${values.queuePrefix}}` }),
    http: () => ({
      host: values.host,
      port: values.port,
      tls: values.tlsCertFile === null || values.tlsKeyFile === null ? null : { certFile: values.tlsCertFile, keyFile: values.tlsKeyFile },
      rateLimit: {
        addressPerSecond: values.rateLimitAddressPerSecond,
        credentialPerSecond: values.rateLimitCredentialPerSecond,
        burstSeconds: values.rateLimitBurstSeconds,
      },
    }),
    masterKey: () => {
      const env = values.masterKeyProvider === 'env';
      return {
        provider: values.masterKeyProvider,
        key: env ? (values.masterKey ?? new SecretBytes(DEVELOPMENT_MASTER_KEY)) : null,
        isDevelopmentKey: env && values.masterKey === null,
        pkcs11:
          values.pkcs11Module === null || values.pkcs11TokenLabel === null || values.pkcs11Pin === null
            ? null
            : { module: values.pkcs11Module, tokenLabel: values.pkcs11TokenLabel, pin: values.pkcs11Pin, keyLabel: values.pkcs11KeyLabel! },
        previous: { key: values.masterKeyPrevious, pkcs11KeyLabel: values.pkcs11KeyLabelPrevious },
      };
    },
    logLevel: () => values.logLevel,
    readinessTimeoutMs: () => values.readinessTimeoutMs,
    ekCertGraceDays: () => values.ekCertGraceDays,
    attestation: () => ({ registrationTtlMs: values.attestationRegistrationTtlMs }),
    inventory: () => ({
      maxFileBytes: values.inventoryMaxFileBytes,
      uploadIdleTimeoutMs: values.inventoryUploadIdleTimeoutMs,
      maxConcurrentImports: values.inventoryMaxConcurrentImports,
    }),
    worker: () => ({
      concurrency: values.workerConcurrency,
      shutdownGraceMs: values.workerShutdownGraceMs,
      lockDurationMs: values.workerLockMs,
    }),
    metrics: () => ({ port: values.metricsPort, host: values.metricsHost }),
    machines: () => ({ attestationIntervalMs: values.machineAttestationIntervalMs }),
    deliveries: () => ({ expiryMs: values.deliveryExpiryMs, reconcileIntervalMs: values.deliveryReconcileIntervalMs, rotationCheckIntervalMs: values.secretRotationCheckIntervalMs }),
    audit: () => ({
      origin: values.auditLogOrigin,
      maxMergeDelayMs: values.auditMaxMergeDelayMs,
      signingKeySeed: values.auditSigningKey,
    }),
  };
  const config: Partial<Record<ConfigSection, unknown>> = {};
  for (const section of ALL_SECTIONS) {
    if (wanted.has(section)) {
      config[section] = build[section]();
    }
  }
  return config as PartialConfig<S>;
}
