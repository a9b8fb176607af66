import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { CONFIG_VARIABLES, DEVELOPMENT_MASTER_KEY } from './config.schema';
import { CONFIG_SECTIONS, ConfigError, loadConfig, loadConfigSections } from './load-config';
import type { RacksealConfig } from './rackseal-config';

// A fixed, recognisable key so a leak is easy to spot in any rendering of the config or an error.
const KEY_HEX = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90';
const KEY_BYTES = Buffer.from(KEY_HEX, 'hex');
const KEY_BASE64 = KEY_BYTES.toString('base64');

/** Every way the key bytes could show up as text. */
function keyRenderings(bytes: Buffer): string[] {
  const hex = bytes.toString('hex');
  return [
    hex,
    hex.toUpperCase(),
    bytes.toString('base64'),
    bytes.toString('base64url'),
    // util.inspect of a Buffer: <Buffer a1 b2 ...>
    hex.slice(0, 24).replace(/(..)(?!$)/g, '$1 '),
    // JSON.stringify of a Buffer: {"type":"Buffer","data":[161,178,...]}
    [...bytes.subarray(0, 8)].join(','),
  ];
}

function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) {
      return error;
    }
    throw error;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)}`);
}

/** A complete, valid environment; each case below breaks exactly one variable of it. */
const VALID_ENV: NodeJS.ProcessEnv = {
  RACKSEAL_ENV: 'test',
  RACKSEAL_MASTER_KEY: KEY_HEX,
};

type VariableKey = keyof typeof CONFIG_VARIABLES;

/**
 * At least one refused value for every variable the schema knows. Typed as a total record, so a new
 * variable without bad values here does not compile.
 */
const BAD_VALUES: Record<VariableKey, readonly string[]> = {
  env: ['staging', 'PRODUCTION ', 'dev'],
  databaseUrl: ['mysql://x', 'not a url', 'postgres:///rackseal', 'http://127.0.0.1:5432/rackseal'],
  databasePoolSize: ['0', '201', 'ten', '5.5'],
  migrationsAtBoot: ['maybe', '2', 'enabled'],
  redisUrl: ['http://x', 'redis-host:6379', 'redis://'],
  redisClusterNodes: ['10.0.0.1', '10.0.0.1:0', 'a:6379,b:70000', 'host:6379,', ':6379', 'a b:6379', 'redis://a:6379'],
  queuePrefix: ['has space', 'a:b', 'x'.repeat(65), 'é'],
  host: ['bad host', 'host/path', 'h@st'],
  port: ['abc', '70000', '-1', '80.5', '0x50'],
  tlsCertFile: ['relative/cert.pem', '/nonexistent/cert.pem'],
  tlsKeyFile: ['relative/key.pem', '/nonexistent/key.pem'],
  rateLimitAddressPerSecond: ['-1', '1000001', 'many'],
  rateLimitCredentialPerSecond: ['-1', '1.5', 'lots'],
  rateLimitBurstSeconds: ['0', '3601', 'long'],
  masterKeyProvider: ['hsm', 'PKCS11', 'kms'],
  pkcs11Module: ['relative/libsofthsm2.so', '/nonexistent/libpkcs11.so'],
  pkcs11TokenLabel: ['x'.repeat(33), ' padded', 'tab\there'],
  pkcs11Pin: ['x'.repeat(256), 'new\nline'],
  pkcs11KeyLabel: ['x'.repeat(129), 'trailing '],
  masterKeyPrevious: ['short', `${KEY_HEX}00`],
  pkcs11KeyLabelPrevious: ['x'.repeat(129), 'bell\u0007'],
  masterKey: ['short', 'zz'.repeat(32), KEY_HEX.slice(0, 62), randomBytes(16).toString('base64'), `${KEY_HEX}00`],
  logLevel: ['loud', 'INFO', 'verbose'],
  readinessTimeoutMs: ['99', '60001', 'soon'],
  ekCertGraceDays: ['-1', '1.5', 'forever', '1234567'],
  attestationRegistrationTtlMs: ['999', '3600001', '60s'],
  workerConcurrency: ['0', '257', 'many'],
  workerShutdownGraceMs: ['-1', '3600001', '30s'],
  workerLockMs: ['999', '3600001', '1e4'],
  metricsPort: ['-1', '65536', 'http', '9464/tcp'],
  metricsHost: ['bad host', 'host/path', '0.0.0.0:9464/'],
  inventoryMaxFileBytes: ['1023', '1099511627777', '1G'],
  inventoryUploadIdleTimeoutMs: ['99', '600001', '30s'],
  // 10 is the default DATABASE_POOL_SIZE: an import cap equal to the pool leaves nothing for other requests
  inventoryMaxConcurrentImports: ['0', '101', 'two', '10'],
  machineAttestationIntervalMs: ['59999', '2678400001', '24h'],
  deliveryExpiryMs: ['59999', '31536000001', '7d'],
  deliveryReconcileIntervalMs: ['999', '86400001', '1m'],
  secretRotationCheckIntervalMs: ['999', '86400001', '1h'],
  auditLogOrigin: ['has space', 'a+b', 'line\nbreak', 'x'.repeat(201), 'é'],
  auditMaxMergeDelayMs: ['49', '3600001', '1s'],
  auditSigningKey: ['short', KEY_HEX.slice(0, 62), `${KEY_HEX}00`],
};

const CASES = (Object.keys(CONFIG_VARIABLES) as VariableKey[]).flatMap((key) =>
  BAD_VALUES[key].map((value) => ({ key, name: CONFIG_VARIABLES[key].name, value })),
);

describe('loadConfig', () => {
  describe('defaults (README "Configuration")', () => {
    let config: RacksealConfig;
    beforeAll(() => {
      config = loadConfig({ RACKSEAL_ENV: 'test' });
    });

    it('points at the local PostgreSQL and Redis and listens on 8080', () => {
      expect(config.database.url).toBe('postgres://postgres@127.0.0.1:5432/rackseal');
      expect(config.redis.url).toBe('redis://127.0.0.1:6379');
      expect(config.http.port).toBe(8080);
      expect(config.http.host).toBe('0.0.0.0');
    });

    it('fills every other variable with its documented default', () => {
      expect(config).toEqual({
        env: 'test',
        database: { url: 'postgres://postgres@127.0.0.1:5432/rackseal', poolSize: 10, migrationsAtBoot: true },
        redis: { url: 'redis://127.0.0.1:6379', clusterNodes: null, keyPrefix: '{rackseal}' },
        http: { host: '0.0.0.0', port: 8080, tls: null, rateLimit: { addressPerSecond: 500, credentialPerSecond: 50, burstSeconds: 10 } },
        masterKey: { provider: 'env', key: expect.anything(), isDevelopmentKey: true, pkcs11: null, previous: { key: null, pkcs11KeyLabel: null } },
        logLevel: 'info',
        readinessTimeoutMs: 2000,
        ekCertGraceDays: 0,
        attestation: { registrationTtlMs: 60000 },
        inventory: { maxFileBytes: 1073741824, uploadIdleTimeoutMs: 30000, maxConcurrentImports: 2 },
        worker: { concurrency: 32, shutdownGraceMs: 30000, lockDurationMs: 30000 },
        machines: { attestationIntervalMs: 86400000 },
        metrics: { port: 0, host: '127.0.0.1' },
        deliveries: { expiryMs: 604800000, reconcileIntervalMs: 60000, rotationCheckIntervalMs: 3600000 },
        audit: { origin: 'rackseal.local/audit', maxMergeDelayMs: 1000, signingKeySeed: null },
      });
    });

    it('keeps the default import cap below a small pool, and refuses an explicit cap that is not', () => {
      expect(loadConfig({ RACKSEAL_ENV: 'test', DATABASE_POOL_SIZE: '2' }).inventory.maxConcurrentImports).toBe(1);
      expect(loadConfig({ RACKSEAL_ENV: 'test', DATABASE_POOL_SIZE: '1' }).inventory.maxConcurrentImports).toBe(1);
      expect(configError({ RACKSEAL_ENV: 'test', DATABASE_POOL_SIZE: '4', INVENTORY_MAX_CONCURRENT_IMPORTS: '4' }).problems).toEqual([
        {
          variable: 'INVENTORY_MAX_CONCURRENT_IMPORTS',
          reason: 'must be lower than DATABASE_POOL_SIZE (4) so other requests keep a connection (got 4)',
        },
      ]);
    });

    it('treats an empty variable like an unset one', () => {
      const empty = loadConfig({ RACKSEAL_ENV: 'test', PORT: '', DATABASE_URL: '', LOG_LEVEL: '' });
      expect(empty.http.port).toBe(8080);
      expect(empty.database.url).toBe('postgres://postgres@127.0.0.1:5432/rackseal');
      expect(empty.logLevel).toBe('info');
    });

    it('documents each default it applies', () => {
      expect(CONFIG_VARIABLES.databaseUrl.defaultText).toBe('postgres://postgres@127.0.0.1:5432/rackseal');
      expect(CONFIG_VARIABLES.redisUrl.defaultText).toBe('redis://127.0.0.1:6379');
      expect(CONFIG_VARIABLES.port.defaultText).toBe('8080');
    });

    it('defaults RACKSEAL_ENV to production, which then demands a master key', () => {
      const error = configError({});
      expect(error.problems.map((p) => p.variable)).toEqual(['RACKSEAL_MASTER_KEY']);
    });
  });

  describe('TLS files', () => {
    it.each([
      ['TLS_CERT_FILE', 'TLS_KEY_FILE'],
      ['TLS_KEY_FILE', 'TLS_CERT_FILE'],
    ])('refuses %s without %s (half a TLS setup is not served as plain HTTP)', (given, missing) => {
      const error = configError({ ...VALID_ENV, [given]: __filename });
      expect(error.problems).toEqual([{ variable: missing, reason: `is required with ${given} (not set)` }]);
    });
  });

  describe('accepted values', () => {
    it('parses the values it is given', () => {
      const config = loadConfig({
        RACKSEAL_ENV: 'demo',
        DATABASE_URL: 'postgresql://app:pw@db.internal:6543/rs',
        DATABASE_POOL_SIZE: '25',
        MIGRATIONS_AT_BOOT: 'off',
        REDIS_URL: 'rediss://cache.internal:6380/2',
        QUEUE_PREFIX: 'rack-seal_1.a',
        HOST: '::1',
        PORT: '0',
        TLS_CERT_FILE: __filename,
        TLS_KEY_FILE: __filename,
        RATE_LIMIT_ADDRESS_PER_SECOND: '0',
        RATE_LIMIT_CREDENTIAL_PER_SECOND: '7',
        RATE_LIMIT_BURST_SECONDS: '3600',
        LOG_LEVEL: 'debug',
        READINESS_TIMEOUT_MS: '100',
        WORKER_CONCURRENCY: '256',
        WORKER_SHUTDOWN_GRACE_MS: '0',
        WORKER_LOCK_MS: '1000',
      });
      expect(config.env).toBe('demo');
      expect(config.database).toEqual({ url: 'postgresql://app:pw@db.internal:6543/rs', poolSize: 25, migrationsAtBoot: false });
      expect(config.redis).toEqual({ url: 'rediss://cache.internal:6380/2', clusterNodes: null, keyPrefix: '{rack-seal_1.a}' });
      expect(config.http).toEqual({
        host: '::1',
        port: 0,
        tls: { certFile: __filename, keyFile: __filename },
        rateLimit: { addressPerSecond: 0, credentialPerSecond: 7, burstSeconds: 3600 },
      });
      expect(config.logLevel).toBe('debug');
      expect(config.readinessTimeoutMs).toBe(100);
      expect(config.worker).toEqual({ concurrency: 256, shutdownGraceMs: 0, lockDurationMs: 1000 });
    });

    it.each([
      ['1', true],
      ['true', true],
      ['YES', true],
      [' on ', true],
      ['0', false],
      ['false', false],
      ['No', false],
      ['off', false],
    ])('reads MIGRATIONS_AT_BOOT=%j as %s', (raw, expected) => {
      expect(loadConfig({ RACKSEAL_ENV: 'test', MIGRATIONS_AT_BOOT: raw }).database.migrationsAtBoot).toBe(expected);
    });

    it('accepts the port range edges', () => {
      expect(loadConfig({ RACKSEAL_ENV: 'test', PORT: '65535' }).http.port).toBe(65535);
      expect(loadConfig({ RACKSEAL_ENV: 'test', PORT: ' 443 ' }).http.port).toBe(443);
    });
  });

  describe('refused values', () => {
    it('has bad values for exactly the variables of the schema', () => {
      expect(Object.keys(BAD_VALUES).sort()).toEqual(Object.keys(CONFIG_VARIABLES).sort());
      expect(new Set(CASES.map((c) => c.name)).size).toBe(Object.keys(CONFIG_VARIABLES).length);
    });

    it.each(CASES)('$name=$value fails with a ConfigError naming $name', ({ name, value }) => {
      const error = configError({ ...VALID_ENV, [name]: value });
      expect(error).toBeInstanceOf(ConfigError);
      expect(error.name).toBe('ConfigError');
      expect(error.problems).toHaveLength(1);
      expect(error.problems[0]?.variable).toBe(name);
      expect(error.problems[0]?.reason).toMatch(/^(must|is) /);
      expect(error.message).toMatch(new RegExp(`^Invalid configuration:\\n {2}- ${name}: \\S`));
    });

    it('says what PORT must be and echoes the bad non-secret value', () => {
      expect(configError({ ...VALID_ENV, PORT: 'abc' }).message).toBe(
        'Invalid configuration:\n  - PORT: must be an integer between 0 and 65535 (got "abc")',
      );
      expect(configError({ ...VALID_ENV, PORT: '70000' }).message).toBe(
        'Invalid configuration:\n  - PORT: must be an integer between 0 and 65535 (got "70000")',
      );
    });

    it('lists the allowed choices for enumerations', () => {
      expect(configError({ ...VALID_ENV, LOG_LEVEL: 'loud' }).problems[0]?.reason).toBe(
        'must be one of fatal, error, warn, info, debug, trace, silent (got "loud")',
      );
      expect(configError({ ...VALID_ENV, RACKSEAL_ENV: 'staging' }).problems[0]?.reason).toBe(
        'must be one of production, demo, test (got "staging")',
      );
    });

    it('reads REDIS_CLUSTER_NODES as seed nodes (host names, IPv4, bracketed IPv6) and refuses a database other than 0 with them', () => {
      const config = loadConfig({ ...VALID_ENV, REDIS_URL: 'rediss://app:pw@ignored:6379/0', REDIS_CLUSTER_NODES: ' redis-a.internal:7000,10.0.0.2:7001 ,[fd00::3]:7002' });
      expect(config.redis).toEqual({
        url: 'rediss://app:pw@ignored:6379/0',
        clusterNodes: [
          { host: 'redis-a.internal', port: 7000 },
          { host: '10.0.0.2', port: 7001 },
          { host: 'fd00::3', port: 7002 },
        ],
        keyPrefix: '{rackseal}',
      });
      const error = configError({ ...VALID_ENV, REDIS_URL: 'redis://:s3cret@cache:6379/2', REDIS_CLUSTER_NODES: 'a:7000' });
      expect(error.problems.map((p) => p.variable)).toEqual(['REDIS_URL']);
      expect(error.problems[0]?.reason).toBe('must name database 0 (or none) with REDIS_CLUSTER_NODES: a Redis Cluster has no other (got "redis://:***@cache:6379/2")');
      expect(error.message).not.toContain('s3cret');
      // Without cluster nodes a database number is the one Redis's.
      expect(loadConfig({ ...VALID_ENV, REDIS_URL: 'redis://cache:6379/2', REDIS_CLUSTER_NODES: '' }).redis.clusterNodes).toBeNull();
    });

    it('names the accepted URL schemes', () => {
      expect(configError({ ...VALID_ENV, DATABASE_URL: 'mysql://x' }).problems[0]?.reason).toBe(
        'must be a URL starting with postgres: or postgresql: (got "mysql://x")',
      );
      expect(configError({ ...VALID_ENV, REDIS_URL: 'http://x' }).problems[0]?.reason).toBe(
        'must be a URL starting with redis: or rediss: (got "http://x")',
      );
    });

    it('reports every bad variable at once, in schema order', () => {
      const error = configError({
        RACKSEAL_ENV: 'test',
        LOG_LEVEL: 'loud',
        PORT: 'abc',
        REDIS_URL: 'http://x',
        DATABASE_URL: 'mysql://x',
        MIGRATIONS_AT_BOOT: 'maybe',
      });
      expect(error.problems.map((p) => p.variable)).toEqual([
        'DATABASE_URL',
        'MIGRATIONS_AT_BOOT',
        'REDIS_URL',
        'PORT',
        'LOG_LEVEL',
      ]);
      const lines = error.message.split('\n');
      expect(lines[0]).toBe('Invalid configuration:');
      expect(lines.slice(1).map((l) => /^ {2}- ([A-Z_]+): /.exec(l)?.[1])).toEqual([
        'DATABASE_URL',
        'MIGRATIONS_AT_BOOT',
        'REDIS_URL',
        'PORT',
        'LOG_LEVEL',
      ]);
    });

    it('assumes production when RACKSEAL_ENV itself is bad, so a missing key is reported too', () => {
      const error = configError({ RACKSEAL_ENV: 'staging' });
      expect(error.problems.map((p) => p.variable)).toEqual(['RACKSEAL_ENV', 'RACKSEAL_MASTER_KEY']);
    });

    it('truncates very long values in the message', () => {
      const error = configError({ ...VALID_ENV, QUEUE_PREFIX: `${'q'.repeat(200)} ` });
      expect(error.message).toContain(`(got "${'q'.repeat(80)}…")`);
      expect(error.message).not.toContain('q'.repeat(81));
    });
  });

  describe('master key', () => {
    it('is required in production and the error says how to make one', () => {
      const error = configError({ RACKSEAL_ENV: 'production' });
      expect(error.problems).toEqual([
        {
          variable: 'RACKSEAL_MASTER_KEY',
          reason: expect.stringMatching(/^is required in production: 32 random bytes .*\(not set\)$/),
        },
      ]);
      expect(error.message).toContain('  - RACKSEAL_MASTER_KEY: is required in production');
    });

    it.each(['demo', 'test'])('falls back to the public development key in %s', (env) => {
      const config = loadConfig({ RACKSEAL_ENV: env });
      expect(config.masterKey.isDevelopmentKey).toBe(true);
      expect(config.masterKey.key!.reveal().equals(DEVELOPMENT_MASTER_KEY)).toBe(true);
      expect(config.masterKey.key!.length).toBe(32);
    });

    it('accepts 64 hex characters (either case)', () => {
      for (const text of [KEY_HEX, KEY_HEX.toUpperCase(), ` ${KEY_HEX}\n`]) {
        const config = loadConfig({ RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: text });
        expect(config.masterKey.isDevelopmentKey).toBe(false);
        expect(config.masterKey.key!.reveal().equals(KEY_BYTES)).toBe(true);
      }
    });

    it('accepts base64 with and without padding', () => {
      expect(KEY_BASE64).toHaveLength(44);
      for (const text of [KEY_BASE64, KEY_BASE64.replace(/=$/, '')]) {
        const config = loadConfig({ RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: text });
        expect(config.masterKey.isDevelopmentKey).toBe(false);
        expect(config.masterKey.key!.reveal().equals(KEY_BYTES)).toBe(true);
      }
    });

    it('uses a given key in demo/test too, and then it is not the development key', () => {
      const config = loadConfig({ RACKSEAL_ENV: 'test', RACKSEAL_MASTER_KEY: KEY_HEX });
      expect(config.masterKey.isDevelopmentKey).toBe(false);
      expect(config.masterKey.key!.reveal().equals(KEY_BYTES)).toBe(true);
    });

    it.each([
      ['31 bytes of hex', randomBytes(31).toString('hex')],
      ['33 bytes of hex', randomBytes(33).toString('hex')],
      ['16 bytes of base64', randomBytes(16).toString('base64')],
      ['48 bytes of base64', randomBytes(48).toString('base64')],
      ['base64url alphabet', Buffer.from('fb'.repeat(32), 'hex').toString('base64url')],
      ['non-hex letters', 'zz'.repeat(32)],
    ])('refuses %s', (_label, text) => {
      const error = configError({ RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: text });
      expect(error.problems).toEqual([
        {
          variable: 'RACKSEAL_MASTER_KEY',
          reason: 'must be exactly 32 bytes written as 64 hex characters or base64 (value not shown)',
        },
      ]);
      expect(error.message).not.toContain(text);
    });

    it('refuses the public development key in production', () => {
      const error = configError({ RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: DEVELOPMENT_MASTER_KEY.toString('hex') });
      expect(error.problems.map((p) => p.variable)).toEqual(['RACKSEAL_MASTER_KEY']);
      expect(error.problems[0]?.reason).toContain('public development key');
      expect(error.message).not.toContain(DEVELOPMENT_MASTER_KEY.toString('hex'));
    });

    it.each([
      ['64 zeros', '0'.repeat(64)],
      ['a repeated pair', 'ab'.repeat(32)],
      ['base64 of zeros', Buffer.alloc(32).toString('base64')],
      ['a short pattern', '0123456789abcdef'.repeat(4)],
    ])('refuses a key that is not random in production (%s), without showing it', (_label, key) => {
      const error = configError({ RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: key });
      expect(error.problems.map((p) => p.variable)).toEqual(['RACKSEAL_MASTER_KEY']);
      expect(error.problems[0]?.reason).toMatch(/^is not random: it has only \d+ distinct byte values/);
      expect(error.message).not.toContain(key);
    });

    it('takes a random key in production, and any well-formed key in test', () => {
      expect(() => loadConfig({ RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: randomBytes(32).toString('hex') })).not.toThrow();
      expect(() => loadConfig({ RACKSEAL_ENV: 'test', RACKSEAL_MASTER_KEY: '0'.repeat(64) })).not.toThrow();
    });

    it('never shows the value of a refused key', () => {
      // Almost a valid key: one hex character short. Any prefix of it in a message is a leak.
      const almost = KEY_HEX.slice(0, 63);
      const error = configError({ RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: almost, PORT: 'abc' });
      expect(error.problems.map((p) => p.variable)).toEqual(['PORT', 'RACKSEAL_MASTER_KEY']);
      for (const text of [error.message, JSON.stringify(error.problems), inspect(error, { depth: null })]) {
        expect(text).not.toContain(almost.slice(0, 16));
        expect(text).toContain('(value not shown)');
      }
    });

    it('keeps a valid key out of JSON.stringify, util.inspect and string conversion of the config', () => {
      const config = loadConfig({ RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: KEY_HEX });
      const renderings = [
        JSON.stringify(config),
        JSON.stringify(config, null, 2),
        inspect(config, { depth: null, showHidden: true }),
        inspect(config.masterKey, { depth: null }),
        String(config.masterKey.key),
        `${config.masterKey.key}`,
        JSON.stringify({ key: config.masterKey.key }),
      ];
      for (const text of renderings) {
        for (const leak of keyRenderings(KEY_BYTES)) {
          expect(text).not.toContain(leak);
        }
        expect(text).toContain('redacted');
      }
      expect(JSON.parse(JSON.stringify(config)).masterKey).toEqual({ provider: 'env', key: '[redacted]', isDevelopmentKey: false, pkcs11: null, previous: { key: null, pkcs11KeyLabel: null } });
    });

    it('keeps the development key out of renderings too', () => {
      const config = loadConfig({ RACKSEAL_ENV: 'demo' });
      const text = `${JSON.stringify(config)}\n${inspect(config, { depth: null, showHidden: true })}`;
      for (const leak of keyRenderings(DEVELOPMENT_MASTER_KEY)) {
        expect(text).not.toContain(leak);
      }
    });

    it('hands out copies, so a caller cannot change the key in place', () => {
      const config = loadConfig({ RACKSEAL_ENV: 'production', RACKSEAL_MASTER_KEY: KEY_HEX });
      config.masterKey.key!.reveal().fill(0);
      expect(config.masterKey.key!.reveal().equals(KEY_BYTES)).toBe(true);
    });
  });

  describe('connection URLs with credentials', () => {
    it('masks the DATABASE_URL password in the error message', () => {
      const error = configError({ ...VALID_ENV, DATABASE_URL: 'mysql://admin:hunter2@db.internal:3306/rackseal' });
      expect(error.problems.map((p) => p.variable)).toEqual(['DATABASE_URL']);
      expect(error.message).not.toContain('hunter2');
      expect(error.message).toContain('(got "mysql://admin:***@db.internal:3306/rackseal")');
    });

    it('masks the password of a postgres URL refused for another reason', () => {
      const error = configError({ ...VALID_ENV, DATABASE_URL: 'postgres://admin:hunter2@/rackseal' });
      expect(error.problems.map((p) => p.variable)).toEqual(['DATABASE_URL']);
      expect(error.message).not.toContain('hunter2');
      expect(error.message).toContain('***');
    });

    it.each([
      ['an unencoded @', 'mysql://admin:hunt@er2@db.internal/rackseal', 'hunt@er2', 'er2'],
      ['an unencoded /', 'mysql://admin:hun/ter2@db.internal/rackseal', 'hun/ter2', 'ter2'],
      ['a colon', 'mysql://admin:hun:ter2@db.internal/rackseal', 'hun:ter2', 'ter2'],
    ])('masks a pasted password containing %s entirely', (_label, url, password, tail) => {
      const error = configError({ ...VALID_ENV, DATABASE_URL: url });
      expect(error.problems.map((p) => p.variable)).toEqual(['DATABASE_URL']);
      expect(error.message).not.toContain(password);
      expect(error.message).not.toContain(tail);
      expect(error.message).toContain('(got "mysql://admin:***@db.internal/rackseal")');
    });

    it.each([
      ['no // after the scheme', 'postgres:ops:hunter2@db.internal/rackseal', '(got "postgres:***@db.internal/rackseal")'],
      ['a single / after the scheme', 'postgresql:/ops:hunter2@db.internal/rackseal', '(got "postgresql:***@db.internal/rackseal")'],
      ['no scheme at all (the user name reads as one)', 'ops:hunter2@db.internal/rackseal', '(got "ops:***@db.internal/rackseal")'],
      ['no user name', 'hunter2@db.internal/rackseal', '(got "***@db.internal/rackseal")'],
    ])('masks everything before the @ of a malformed URL with a password (%s)', (_label, url, shown) => {
      const error = configError({ ...VALID_ENV, DATABASE_URL: url });
      expect(error.problems.map((p) => p.variable)).toEqual(['DATABASE_URL']);
      expect(error.message).not.toContain('hunter2');
      expect(error.message).toContain(shown);
    });

    it('masks the REDIS_URL password in the error message', () => {
      const error = configError({ ...VALID_ENV, REDIS_URL: 'http://:s3cr3t-redis@cache:6379' });
      expect(error.problems.map((p) => p.variable)).toEqual(['REDIS_URL']);
      expect(error.message).not.toContain('s3cr3t-redis');
      expect(error.message).toContain('(got "http://:***@cache:6379")');
    });
  });
});

describe('EK_CERT_GRACE_DAYS', () => {
  it('takes whole days or "inf"', () => {
    const base = { RACKSEAL_ENV: 'test' };
    expect(loadConfig({ ...base, EK_CERT_GRACE_DAYS: '365' }).ekCertGraceDays).toBe(365);
    expect(loadConfig({ ...base, EK_CERT_GRACE_DAYS: 'inf' }).ekCertGraceDays).toBe(Number.POSITIVE_INFINITY);
    expect(loadConfig(base).ekCertGraceDays).toBe(0);
  });
});

describe('loadConfigSections (a consumer validates only what it uses)', () => {
  it('maps every variable of the schema to exactly one section', () => {
    const mapped = Object.values(CONFIG_SECTIONS).flat();
    expect([...mapped].sort()).toEqual(Object.keys(CONFIG_VARIABLES).sort());
    expect(new Set(mapped).size).toBe(mapped.length);
  });

  it('a database-only consumer in production needs no RACKSEAL_MASTER_KEY, and its config holds no key', () => {
    const config = loadConfigSections({ RACKSEAL_ENV: 'production', DATABASE_URL: 'postgres://db.internal/rs' }, ['database', 'readinessTimeoutMs']);
    expect(config).toEqual({
      env: 'production',
      database: { url: 'postgres://db.internal/rs', poolSize: 10, migrationsAtBoot: true },
      readinessTimeoutMs: 2000,
    });
    expect('masterKey' in config).toBe(false);
  });

  it('still refuses the variables of its sections, naming every bad one', () => {
    let error: unknown;
    try {
      loadConfigSections({ RACKSEAL_ENV: 'staging', DATABASE_URL: 'mysql://x', PORT: 'abc', RACKSEAL_MASTER_KEY: 'short' }, ['database']);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    // PORT and RACKSEAL_MASTER_KEY are not the consumer's business: neither read nor reported.
    expect((error as ConfigError).problems.map((p) => p.variable)).toEqual(['RACKSEAL_ENV', 'DATABASE_URL']);
  });

  it('the full loadConfig (control plane, worker) still requires the key in production', () => {
    expect(configError({ RACKSEAL_ENV: 'production', DATABASE_URL: 'postgres://db.internal/rs' }).problems.map((p) => p.variable)).toEqual(['RACKSEAL_MASTER_KEY']);
  });
});

describe('master-key providers', () => {
  const TOKEN = { MASTER_KEY_PROVIDER: 'pkcs11', PKCS11_MODULE: process.execPath, PKCS11_TOKEN_LABEL: 'rackseal', PKCS11_PIN: 'pin-1234-secret' };

  it('pkcs11 in production needs the token, not RACKSEAL_MASTER_KEY, and keeps the PIN out of every rendering', () => {
    const config = loadConfig({ RACKSEAL_ENV: 'production', ...TOKEN });
    expect(config.masterKey.provider).toBe('pkcs11');
    expect(config.masterKey.key).toBeNull();
    expect(config.masterKey.isDevelopmentKey).toBe(false);
    expect(config.masterKey.pkcs11).toMatchObject({ module: process.execPath, tokenLabel: 'rackseal', keyLabel: 'rackseal-master-key' });
    expect(config.masterKey.pkcs11!.pin.reveal().toString()).toBe('pin-1234-secret');
    expect(`${JSON.stringify(config)} ${inspect(config, { depth: null })}`).not.toContain('pin-1234');
  });

  it('names every missing token variable under pkcs11, and never echoes a refused PIN', () => {
    expect(configError({ RACKSEAL_ENV: 'production', MASTER_KEY_PROVIDER: 'pkcs11' }).problems.map((p) => p.variable)).toEqual([
      'PKCS11_MODULE',
      'PKCS11_TOKEN_LABEL',
      'PKCS11_PIN',
    ]);
    const error = configError({ RACKSEAL_ENV: 'test', ...TOKEN, PKCS11_PIN: 'pin-1234-\u0001' });
    expect(error.problems).toEqual([{ variable: 'PKCS11_PIN', reason: 'must be 1-255 printable ASCII characters (value not shown)' }]);
    expect(error.message).not.toContain('pin-1234');
  });

  it('reads the previous keys of a rotation: an env key, and a token label that makes the token required', () => {
    const previous = randomBytes(32);
    const config = loadConfig({ RACKSEAL_ENV: 'test', RACKSEAL_MASTER_KEY: KEY_HEX, RACKSEAL_MASTER_KEY_PREVIOUS: previous.toString('base64') });
    expect(config.masterKey.previous.key!.reveal().equals(previous)).toBe(true);
    expect(configError({ RACKSEAL_ENV: 'test', PKCS11_KEY_LABEL_PREVIOUS: 'old-key' }).problems.map((p) => p.variable)).toEqual([
      'PKCS11_MODULE',
      'PKCS11_TOKEN_LABEL',
      'PKCS11_PIN',
    ]);
  });
});

