/**
 * docker/: the Dockerfiles, compose.yaml and .env.example. No Docker engine runs where the suites run,
 * so nothing here builds an image or starts a container. What can be checked without one is checked
 * for real: the files' structure against the repository (COPY sources, build stages, package.json bin,
 * tsconfig.build.json, libs/config's variables), and the two scripts the images run, executed on this
 * machine: the control plane's HEALTHCHECK against a built control plane, and the swtpm sidecar's
 * entrypoint against the local swtpm (the suites already need swtpm).
 *
 * How compose.yaml is parsed: `docker compose config` would be the authority, but the docker client
 * here has no compose plugin ("docker: unknown command: docker compose"), and python3-yaml is not
 * something prepare-env installs. So the YAML is read with js-yaml (a devDependency),
 * which applies the YAML 1.2 core
 * schema like compose does, but it neither interpolates `${VAR}` nor resolves `<<` merge keys: the
 * test interpolates itself (below) and refuses merge keys rather than check an unmerged service.
 * The parsed file is validated against the Compose Specification's JSON schema as shipped by the
 * docker-compose package (testcontainers depends on it) with ajv (eslint depends on it): unknown keys
 * and wrong shapes fail here as `docker compose` would fail on them.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes, X509Certificate } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { CONFIG_VARIABLES, DEVELOPMENT_MASTER_KEY, loadConfig } from '@rackseal/config';
import * as yaml from 'js-yaml';
import { loadAgentConfig } from '../apps/agent/src/install/agent-config-file';
import { createTestDatabase, type TestDatabase } from './support/database';
import { commandsIn, HelpCache, joinContinuations } from './support/documented-commands';
import { onWorkerExit } from './support/exit-guard';
import { freePort, freePortPair, LOCALHOST } from './support/free-port';
import { startControlPlane, type RunningProcess } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testEnv } from './support/test-config';

const REPO_ROOT = join(__dirname, '..');
const DOCKER_DIR = join(REPO_ROOT, 'docker');
const COMPOSE_FILE = join(DOCKER_DIR, 'compose.yaml');
const ENV_EXAMPLE = join(DOCKER_DIR, '.env.example');
const ENTRYPOINT = join(DOCKER_DIR, 'swtpm', 'entrypoint.sh');
const HEALTHCHECK_SCRIPT = join(DOCKER_DIR, 'healthcheck.mjs');
const AGENT_ENTRYPOINT = join(DOCKER_DIR, 'agent-entrypoint.sh');
const FLEET_SETUP = join(DOCKER_DIR, 'fleet-setup.sh');
const HAPROXY_CFG = join(DOCKER_DIR, 'haproxy.cfg');

/** The fleet compose.yaml runs: three machines, each an swtpm and its agent. */
const MACHINES = [1, 2, 3] as const;
const CONTROL_PLANES = ['control-plane-1', 'control-plane-2'] as const;
/** The services given libs/config's variables: the two server processes. */
const SERVERS = [...CONTROL_PLANES, 'worker'] as const;
/** Every service that runs Node. */
const NODE_SERVICES = [...SERVERS, 'fleet-setup', ...MACHINES.map((n) => `agent-${n}`)];
/** Variables the servers get beside libs/config's: Node's own (the heap bound). */
const NODE_VARIABLES: ReadonlySet<string> = new Set(['NODE_OPTIONS']);

const PACKAGE = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
  engines: { node: string };
  bin: Record<string, string>;
};
const CONFIG_NAMES: ReadonlySet<string> = new Set(Object.values(CONFIG_VARIABLES).map((v) => v.name));
const DEFAULT_SHUTDOWN_GRACE_MS = CONFIG_VARIABLES.workerShutdownGraceMs.parse(undefined);

// ------------------------------------------------------------------------------------------------
// compose.yaml


type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

interface BuildSpec {
  context: string;
  dockerfile?: string;
  target?: string;
}

interface ComposeService {
  image?: string;
  build?: string | BuildSpec;
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[]; disable?: boolean };
  ports?: (string | number | { published?: string | number })[];
  networks?: string[] | Record<string, unknown>;
  command?: string | string[];
  entrypoint?: string | string[];
  stop_grace_period?: string;
  volumes?: string[];
  mem_limit?: string;
  deploy?: { replicas?: number };
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  networks?: Record<string, { internal?: boolean } | null>;
  volumes?: Record<string, unknown>;
}

type Validator = ((data: unknown) => boolean) & { errors?: unknown[] | null };
const Ajv = createRequire(require.resolve('eslint'))('ajv') as new (options: object) => {
  compile(schema: object): Validator;
};
const COMPOSE_SCHEMA_FILE = join(
  dirname(createRequire(require.resolve('testcontainers')).resolve('docker-compose/package.json')),
  'schema',
  'compose-spec.json',
);

const COMPOSE_TEXT = readFileSync(COMPOSE_FILE, 'utf8');
const COMPOSE = yaml.load(COMPOSE_TEXT) as ComposeFile;

function service(name: string): ComposeService {
  const found = COMPOSE.services[name];
  if (found === undefined) {
    throw new Error(`compose.yaml has no service "${name}"`);
  }
  return found;
}

function environmentOf(svc: ComposeService): Record<string, string> {
  const env = svc.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const eq = entry.indexOf('=');
        return eq < 0 ? [entry, ''] : [entry.slice(0, eq), entry.slice(eq + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function networksOf(svc: ComposeService): string[] {
  const networks = svc.networks ?? ['default'];
  return Array.isArray(networks) ? networks : Object.keys(networks);
}

function dependsOf(svc: ComposeService): Record<string, string> {
  const deps = svc.depends_on ?? {};
  return Array.isArray(deps)
    ? Object.fromEntries(deps.map((d) => [d, 'service_started']))
    : Object.fromEntries(Object.entries(deps).map(([k, v]) => [k, v.condition ?? 'service_started']));
}

function buildOf(svc: ComposeService): Required<Pick<BuildSpec, 'context' | 'dockerfile'>> & { target?: string } {
  if (svc.build === undefined) {
    throw new Error('service has no build section');
  }
  const spec = typeof svc.build === 'string' ? { context: svc.build } : svc.build;
  return { context: join(DOCKER_DIR, spec.context), dockerfile: spec.dockerfile ?? 'Dockerfile', target: spec.target };
}

/** Every string value in a parsed document (keys excluded). */
function strings(node: unknown, out: string[] = []): string[] {
  if (typeof node === 'string') {
    out.push(node);
  } else if (Array.isArray(node)) {
    node.forEach((n) => strings(n, out));
  } else if (node !== null && typeof node === 'object') {
    Object.values(node as Record<string, Json>).forEach((n) => strings(n, out));
  }
  return out;
}

function hasMergeKey(node: unknown): boolean {
  if (Array.isArray(node)) {
    return node.some(hasMergeKey);
  }
  if (node !== null && typeof node === 'object') {
    return Object.entries(node).some(([k, v]) => k === '<<' || hasMergeKey(v));
  }
  return false;
}

// Compose's interpolation: $$, $NAME, ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}.
const INTERPOLATION = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;

interface Reference {
  name: string;
  required: boolean;
}

function references(text: string): Reference[] {
  const found: Reference[] = [];
  for (const match of text.matchAll(INTERPOLATION)) {
    const name = match[1] ?? match[4];
    if (name !== undefined) {
      found.push({ name, required: match[2] === ':?' || match[2] === '?' });
    }
    if (match[3]?.includes('${')) {
      throw new Error(`nested interpolation is not understood by this test: ${match[0]}`);
    }
  }
  return found;
}

function interpolate(text: string, vars: Record<string, string>): string {
  return text.replace(INTERPOLATION, (whole, braced?: string, op?: string, arg?: string, bare?: string) => {
    if (whole === '$$') {
      return '$';
    }
    const name = (braced ?? bare) as string;
    const value = vars[name];
    const unset = value === undefined || (op?.startsWith(':') === true && value === '');
    if (op?.endsWith('?') === true && unset) {
      throw new Error(`compose would refuse to start: ${name}: ${arg}`);
    }
    if (op?.endsWith('-') === true && unset) {
      return arg ?? '';
    }
    return value ?? '';
  });
}

/** Go durations as compose writes them: 45s, 1m30s, 1500ms. */
function durationMs(text: string): number {
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...text.matchAll(/(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) {
    throw new Error(`not a duration: "${text}"`);
  }
  return parts.reduce((sum, p) => sum + Number(p[1]) * (units[p[2] as string] as number), 0);
}

// ------------------------------------------------------------------------------------------------
// .env.example

const ENV_EXAMPLE_TEXT = readFileSync(ENV_EXAMPLE, 'utf8');

/** NAME=value lines (no quoting is used, and none is needed for what the file holds). */
function envAssignments(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (match !== null) {
      out.set(match[1] as string, match[2] as string);
    }
  }
  return out;
}

const ENV_SETTINGS = envAssignments(ENV_EXAMPLE_TEXT);

/** .env.example filled in the way docker/README.md says: the empty secrets generated, the rest as shipped. */
function filledInEnvironment(): Record<string, string> {
  return {
    ...Object.fromEntries(ENV_SETTINGS),
    POSTGRES_PASSWORD: randomBytes(24).toString('hex'),
    RACKSEAL_MASTER_KEY: randomBytes(32).toString('hex'),
  };
}

// ------------------------------------------------------------------------------------------------
// Dockerfiles

interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

interface Stage {
  name: string | undefined;
  base: string;
  instructions: Instruction[];
}

function parseDockerfile(path: string): Stage[] {
  const logical: { text: string; line: number }[] = [];
  let pending: { text: string; line: number } | undefined;
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((raw, index) => {
      const trimmed = raw.trim();
      // Comment lines, also those inside a continued instruction, are dropped by docker.
      if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) {
        return;
      }
      const continued = trimmed.endsWith('\\');
      const text = continued ? trimmed.slice(0, -1).trim() : trimmed;
      pending = pending === undefined ? { text, line: index + 1 } : { text: `${pending.text} ${text}`, line: pending.line };
      if (!continued) {
        logical.push(pending);
        pending = undefined;
      }
    });
  if (pending !== undefined) {
    throw new Error(`${path}: file ends inside a continued line`);
  }

  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const { text, line } of logical) {
    const [keyword = '', ...rest] = text.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' '), line };
    if (instruction.keyword === 'FROM') {
      const from = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(instruction.args);
      if (from === null) {
        throw new Error(`${path}:${line}: cannot read FROM ${instruction.args}`);
      }
      const base = (from[1] as string).replace(/\$\{?([A-Za-z_]\w*)\}?/g, (_m, n: string) => globalArgs.get(n) ?? '');
      stages.push({ name: from[2], base, instructions: [] });
    } else if (stages.length === 0) {
      if (instruction.keyword !== 'ARG') {
        throw new Error(`${path}:${line}: only ARG may come before the first FROM`);
      }
      const [name = '', value = ''] = instruction.args.split('=', 2);
      globalArgs.set(name, value);
    } else {
      (stages[stages.length - 1] as Stage).instructions.push(instruction);
    }
  }
  return stages;
}

/** The stage and the stages it is built FROM, base first. */
function lineage(stages: Stage[], name: string | undefined): Stage[] {
  const stage = name === undefined ? stages[stages.length - 1] : stages.find((s) => s.name === name);
  if (stage === undefined) {
    throw new Error(`no stage named ${name}`);
  }
  const parent = stages.find((s) => s.name === stage.base);
  return parent === undefined ? [stage] : [...lineage(stages, parent.name), stage];
}

/** The last value of an instruction along a stage's lineage (USER, CMD, ENTRYPOINT, HEALTHCHECK...). */
function effective(stages: Stage[], target: string | undefined, keyword: string): string | undefined {
  const all = lineage(stages, target).flatMap((s) => s.instructions.filter((i) => i.keyword === keyword));
  return all[all.length - 1]?.args;
}

function execForm(args: string | undefined): string[] {
  if (args === undefined || !args.startsWith('[')) {
    throw new Error(`expected the exec (JSON) form, got: ${args}`);
  }
  return JSON.parse(args) as string[];
}

interface Copy {
  from: string | undefined;
  sources: string[];
  destination: string;
  line: number;
}

function copies(stage: Stage): Copy[] {
  return stage.instructions
    .filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')
    .map((i) => {
      const tokens = i.args.startsWith('[') ? (JSON.parse(i.args) as string[]) : i.args.split(/\s+/);
      const flags = tokens.filter((t) => t.startsWith('--'));
      const paths = tokens.filter((t) => !t.startsWith('--'));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      return { from, sources: paths.slice(0, -1), destination: paths[paths.length - 1] as string, line: i.line };
    });
}

/** .dockerignore patterns without wildcards, as paths relative to the context. */
function plainIgnorePatterns(context: string): string[] {
  const file = join(context, '.dockerignore');
  if (!existsSync(file)) {
    return [];
  }
  return readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#') && !l.startsWith('!') && !/[*?[]/.test(l))
    .map((l) => l.replace(/^\/+|\/+$/g, ''));
}

const MAIN_DOCKERFILE = join(DOCKER_DIR, 'Dockerfile');
const SWTPM_DOCKERFILE = join(DOCKER_DIR, 'swtpm', 'Dockerfile');
const MAIN = parseDockerfile(MAIN_DOCKERFILE);
const SWTPM = parseDockerfile(SWTPM_DOCKERFILE);
const SERVER_TARGETS = ['control-plane', 'worker', 'agent'] as const;

function isRoot(user: string | undefined): boolean {
  const name = (user ?? 'root').split(':')[0];
  return name === 'root' || name === '0' || name === '';
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(command, [...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 30_000,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
  });
  if (result.error !== undefined) {
    throw result.error;
  }
  return result;
}

// ================================================================================================

describe('docker/compose.yaml', () => {
  it('has PostgreSQL, Redis, two control planes behind a load balancer, workers, fleet-setup and three machines', () => {
    expect(Object.keys(COMPOSE.services).sort()).toEqual(
      [
        'postgres',
        'redis',
        ...CONTROL_PLANES,
        'lb',
        'worker',
        'fleet-setup',
        ...MACHINES.flatMap((n) => [`swtpm-${n}`, `agent-${n}`]),
      ].sort(),
    );
    expect(service('worker').deploy?.replicas).toBeGreaterThanOrEqual(2);
  });

  it('is valid against the Compose Specification schema', () => {
    // The schema names draft-07 as its meta-schema, which ajv 6 knows under another id: drop the reference.
    const { $schema: _metaSchema, ...schema } = JSON.parse(readFileSync(COMPOSE_SCHEMA_FILE, 'utf8')) as Record<string, unknown>;
    const validate = new Ajv({ allErrors: true, schemaId: 'auto', unknownFormats: 'ignore' }).compile(schema);
    const valid = validate(COMPOSE);
    expect(valid ? [] : validate.errors).toEqual([]);
  });

  it('uses no YAML merge keys (this check would read unmerged services)', () => {
    expect(hasMergeKey(COMPOSE)).toBe(false);
  });

  it('builds every rackseal service from a Dockerfile and target that exist', () => {
    for (const name of [...CONTROL_PLANES, 'worker', 'fleet-setup', ...MACHINES.flatMap((n) => [`agent-${n}`, `swtpm-${n}`])]) {
      const build = buildOf(service(name));
      const dockerfile = join(build.context, build.dockerfile);
      expect({ name, dockerfile: relative(REPO_ROOT, dockerfile), exists: existsSync(dockerfile) }).toEqual({
        name,
        dockerfile: relative(REPO_ROOT, dockerfile),
        exists: true,
      });
      if (build.target !== undefined) {
        expect(parseDockerfile(dockerfile).map((s) => s.name)).toContain(build.target);
      }
    }
    for (const name of [...CONTROL_PLANES, 'fleet-setup']) {
      expect({ name, target: buildOf(service(name)).target }).toEqual({ name, target: 'control-plane' });
    }
    expect(buildOf(service('worker')).target).toBe('worker');
    for (const n of MACHINES) {
      expect(buildOf(service(`agent-${n}`)).target).toBe('agent');
      expect(buildOf(service(`swtpm-${n}`)).context).toBe(join(DOCKER_DIR, 'swtpm'));
    }
  });

  it('checks PostgreSQL with pg_isready and Redis with redis-cli ping', () => {
    expect([service('postgres').healthcheck?.test].flat().join(' ')).toMatch(/\bpg_isready\b/);
    expect([service('redis').healthcheck?.test].flat().join(' ')).toMatch(/\bredis-cli ping\b/);
    expect(service('postgres').image).toMatch(/^postgres:15\b/);
    expect(service('redis').image).toMatch(/^redis:7\b/);
  });

  it('starts the control planes and the workers only once PostgreSQL and Redis are healthy', () => {
    for (const name of SERVERS) {
      expect(dependsOf(service(name))).toMatchObject({ postgres: 'service_healthy', redis: 'service_healthy' });
    }
  });

  it('waits only on services that have a health check (in compose.yaml or in their image)', () => {
    for (const [name, svc] of Object.entries(COMPOSE.services)) {
      for (const [dependency, condition] of Object.entries(dependsOf(svc))) {
        if (condition !== 'service_healthy') {
          continue;
        }
        const dep = service(dependency);
        let checked = dep.healthcheck?.test !== undefined && dep.healthcheck.disable !== true;
        if (!checked && dep.build !== undefined) {
          const build = buildOf(dep);
          const check = effective(parseDockerfile(join(build.context, build.dockerfile)), build.target, 'HEALTHCHECK');
          checked = check !== undefined && !/^NONE\b/i.test(check);
        }
        expect({ service: name, waitsOn: dependency, hasHealthCheck: checked }).toEqual({
          service: name,
          waitsOn: dependency,
          hasHealthCheck: true,
        });
      }
    }
  });

  it("sets only variables that libs/config reads (and Node's NODE_OPTIONS) on the control planes and the workers", () => {
    for (const name of SERVERS) {
      const unknown = Object.keys(environmentOf(service(name))).filter((v) => !CONFIG_NAMES.has(v) && !NODE_VARIABLES.has(v));
      expect({ service: name, unknown }).toEqual({ service: name, unknown: [] });
    }
  });

  it('runs in production with RACKSEAL_MASTER_KEY required from the environment, never written down', () => {
    for (const name of SERVERS) {
      const env = environmentOf(service(name));
      expect(env.RACKSEAL_ENV).toBe('production');
      expect(env.RACKSEAL_MASTER_KEY).toMatch(/^\$\{RACKSEAL_MASTER_KEY:\?[^}]+\}$/);
    }
  });

  it('turns .env.example, filled in as the README says, into configurations libs/config accepts', () => {
    const vars = filledInEnvironment();
    for (const name of SERVERS) {
      const env = Object.fromEntries(
        Object.entries(environmentOf(service(name))).map(([k, v]) => [k, interpolate(v, vars)]),
      );
      const config = loadConfig(env);
      expect(config.env).toBe('production');
      expect(config.masterKey.isDevelopmentKey).toBe(false);
      expect(config.database.migrationsAtBoot).toBe(true);
      expect(new URL(config.database.url).hostname).toBe('postgres');
      expect(new URL(config.redis.url).hostname).toBe('redis');
    }
  });

  it('refuses to start while the secrets in .env.example are still empty', () => {
    const vars = Object.fromEntries(ENV_SETTINGS);
    expect(() => interpolate(environmentOf(service('control-plane-1'))['RACKSEAL_MASTER_KEY'] ?? '', vars)).toThrow(
      /RACKSEAL_MASTER_KEY/,
    );
    expect(() => interpolate(environmentOf(service('postgres'))['POSTGRES_PASSWORD'] ?? '', vars)).toThrow(
      /POSTGRES_PASSWORD/,
    );
  });

  it("gives the worker a stop_grace_period longer than its shutdown grace, default and .env.example's", () => {
    const period = service('worker').stop_grace_period;
    expect(period).toBeDefined();
    const periodMs = durationMs(period as string);
    expect(periodMs).toBeGreaterThan(DEFAULT_SHUTDOWN_GRACE_MS);
    const configured = ENV_SETTINGS.get('WORKER_SHUTDOWN_GRACE_MS');
    if (configured !== undefined && configured !== '') {
      expect(periodMs).toBeGreaterThan(Number(configured));
    }
  });

  it("publishes only the load balancer; each TPM shares a network with nothing but its own agent", () => {
    const published = Object.entries(COMPOSE.services)
      .filter(([, svc]) => (svc.ports ?? []).length > 0)
      .map(([name]) => name);
    expect(published).toEqual(['lb']);

    for (const n of MACHINES) {
      const tpmNetworks = networksOf(service(`swtpm-${n}`));
      const neighbours = Object.entries(COMPOSE.services)
        .filter(([name, svc]) => name !== `swtpm-${n}` && networksOf(svc).some((net) => tpmNetworks.includes(net)))
        .map(([name]) => name);
      expect({ tpm: n, neighbours }).toEqual({ tpm: n, neighbours: [`agent-${n}`] });
      for (const network of tpmNetworks) {
        expect({ network, internal: COMPOSE.networks?.[network]?.internal }).toEqual({ network, internal: true });
      }
      // The agent talks to the control plane (through the load balancer), never to its databases.
      const agentNetworks = networksOf(service(`agent-${n}`));
      for (const backend of ['postgres', 'redis']) {
        const shared = networksOf(service(backend)).filter((net) => agentNetworks.includes(net));
        expect({ agent: n, backend, shared }).toEqual({ agent: n, backend, shared: [] });
      }
      expect(networksOf(service('lb')).some((net) => agentNetworks.includes(net))).toBe(true);
    }
  });

  it('runs the two control planes from one image with one environment, each checked by /health/ready', () => {
    const [first, second] = CONTROL_PLANES.map((name) => service(name));
    expect(second?.image).toBe(first?.image);
    expect(environmentOf(second as ComposeService)).toEqual(environmentOf(first as ComposeService));
    for (const name of CONTROL_PLANES) {
      const build = buildOf(service(name));
      const check = effective(parseDockerfile(join(build.context, build.dockerfile)), build.target, 'HEALTHCHECK');
      expect({ name, check }).toEqual({ name, check: expect.stringContaining('/app/healthcheck.mjs') });
      expect(service(name).healthcheck).toBeUndefined();
    }
  });

  it('balances over exactly the control planes, checked by /health/ready, and health-checks the balancer', () => {
    const cfg = readFileSync(HAPROXY_CFG, 'utf8');
    expect(service('lb').volumes).toContain('./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
    const servers = [...cfg.matchAll(/^\s*server\s+(\S+)\s+(\S+):8080\b.*\bcheck\b/gm)].map((m) => [m[1], m[2]]);
    expect(servers).toEqual(CONTROL_PLANES.map((name) => [name, name]));
    expect(cfg).toMatch(/^\s*option httpchk GET \/health\/ready$/m);
    expect(cfg).toMatch(/^\s*http-check expect status 200$/m);
    expect(cfg).toMatch(/^\s*bind :8080$/m);
    // Above the node API's longest long poll (30 s).
    for (const timeout of ['client', 'server']) {
      const seconds = Number(new RegExp(`^\\s*timeout ${timeout} (\\d+)s$`, 'm').exec(cfg)?.[1]);
      expect({ timeout, above30s: seconds > 30 }).toEqual({ timeout, above30s: true });
    }
    const monitor = /^\s*monitor-uri (\S+)$/m.exec(cfg)?.[1];
    expect(monitor).toBeDefined();
    expect([service('lb').healthcheck?.test].flat().join(' ')).toContain(`http://127.0.0.1:8080${monitor as string}`);
    for (const name of CONTROL_PLANES) {
      expect(dependsOf(service('lb'))).toMatchObject({ [name]: 'service_healthy' });
    }
  });

  it('bounds the heap of every Node process below its memory limit (--max-old-space-size)', () => {
    const vars = filledInEnvironment();
    for (const name of NODE_SERVICES) {
      const options = interpolate(environmentOf(service(name)).NODE_OPTIONS ?? '', vars);
      const heapMb = Number(/^--max-old-space-size=(\d+)$/.exec(options)?.[1]);
      const limit = /^(\d+)m$/.exec(service(name).mem_limit ?? '');
      expect({ name, options, heapBounded: heapMb > 0, limit: limit?.[0] }).toEqual({
        name,
        options,
        heapBounded: true,
        limit: expect.any(String),
      });
      // At least a quarter of the limit stays outside the heap: buffers, native memory, threads.
      expect({ name, heapMb, fits: heapMb <= Number(limit?.[1]) * 0.75 }).toEqual({ name, heapMb, fits: true });
    }
  });

  it('runs fleet-setup once, in the control-plane image, with each machine\'s public certificates read-only', () => {
    const setup = service('fleet-setup');
    expect(setup.healthcheck?.disable).toBe(true);
    expect(setup.entrypoint).toEqual(['/usr/bin/tini', '--', 'sh', '/usr/local/bin/fleet-setup']);
    expect(setup.volumes).toContain('./fleet-setup.sh:/usr/local/bin/fleet-setup:ro');
    for (const n of MACHINES) {
      expect(setup.volumes).toContain(`swtpm-${n}-public:/fleet/machine-${n}:ro`);
      expect(service(`swtpm-${n}`).volumes).toContain(`swtpm-${n}-public:/var/lib/swtpm-public`);
      expect(environmentOf(service(`swtpm-${n}`)).SWTPM_PUBLIC_DIR).toBe('/var/lib/swtpm-public');
      expect(dependsOf(setup)).toMatchObject({ [`swtpm-${n}`]: 'service_healthy' });
      // The TPM's own state is never mounted anywhere else.
      const stateUsers = Object.entries(COMPOSE.services)
        .filter(([, svc]) => (svc.volumes ?? []).some((v) => v.startsWith(`swtpm-${n}-state:`)))
        .map(([name]) => name);
      expect(stateUsers).toEqual([`swtpm-${n}`]);
    }
    expect(run('sh', ['-n', FLEET_SETUP]).status).toBe(0);
  });

  it("gives each agent its own TPM, state and the shared agent.yaml, with flags today's rackseal-agent accepts", async () => {
    const helps = new HelpCache();
    for (const n of MACHINES) {
      const agent = service(`agent-${n}`);
      expect(dependsOf(agent)).toMatchObject({ [`swtpm-${n}`]: 'service_healthy', lb: 'service_healthy' });
      expect(agent.volumes).toEqual(
        expect.arrayContaining(['./agent.yaml:/etc/rackseal/agent.yaml:ro', `agent-${n}-state:/var/lib/rackseal-agent`]),
      );
      const [program, ...args] = agent.command as string[];
      expect(program).toBe('rackseal-agent-entrypoint');
      expect(args).toEqual(['--tpm', `swtpm:swtpm-${n}:2321`]);
      // The entrypoint passes its arguments to status, enroll and run: each must take them.
      for (const subcommand of ['status', 'enroll', 'run']) {
        const problems = await helps.problems({ source: 'compose.yaml', line: 0, program: 'rackseal-agent', words: [subcommand, ...args], text: '' });
        expect({ agent: n, subcommand, problems }).toEqual({ agent: n, subcommand, problems: [] });
      }
    }
  });

  it('the rackseal commands of fleet-setup.sh are ones the built CLI accepts', async () => {
    const helps = new HelpCache();
    const lines = readFileSync(FLEET_SETUP, 'utf8')
      .split('\n')
      .map((text, index) => ({ line: index + 1, text }))
      .filter(({ text }) => !text.trimStart().startsWith('#'));
    const commands = commandsIn('docker/fleet-setup.sh', joinContinuations(lines));
    expect(commands.map((c) => c.words.slice(0, 2).join(' '))).toEqual([
      'token create',
      'vendor-ca add',
      'inventory import',
      'policy promote',
      'secrets show',
      'secrets create',
      'secrets show',
      'secrets create',
    ]);
    const problems = await Promise.all(commands.map(async (c) => ({ line: c.line, problems: await helps.problems(c) })));
    expect(problems.filter((p) => p.problems.length > 0)).toEqual([]);
  });
});

describe('docker/.env.example', () => {
  it('documents every variable compose.yaml substitutes, and nothing compose.yaml does not use', () => {
    const referenced = new Set(strings(COMPOSE).flatMap((s) => references(s).map((r) => r.name)));
    expect([...referenced].filter((name) => !ENV_SETTINGS.has(name)).sort()).toEqual([]);
    expect([...ENV_SETTINGS.keys()].filter((name) => !referenced.has(name)).sort()).toEqual([]);
  });

  it('leaves every required secret empty', () => {
    const required = new Set(strings(COMPOSE).flatMap((s) => references(s).filter((r) => r.required).map((r) => r.name)));
    expect([...required].sort()).toEqual(['POSTGRES_PASSWORD', 'RACKSEAL_MASTER_KEY']);
    for (const name of required) {
      expect({ name, value: ENV_SETTINGS.get(name) }).toEqual({ name, value: '' });
    }
  });

  it('has a comment for each setting', () => {
    const lines = ENV_EXAMPLE_TEXT.split('\n');
    lines.forEach((line, index) => {
      if (/^[A-Za-z_]\w*=/.test(line)) {
        expect({ setting: line, commentAbove: lines[index - 1]?.startsWith('#') }).toEqual({
          setting: line,
          commentAbove: true,
        });
      }
    });
  });

  it('mentions every variable of libs/config (as a setting, or as fixed in compose.yaml)', () => {
    const missing = [...CONFIG_NAMES].filter((name) => !new RegExp(`\\b${name}\\b`).test(ENV_EXAMPLE_TEXT));
    expect(missing).toEqual([]);
  });
});

describe('secrets under docker/', () => {
  function filesUnder(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
      const path = join(dir, entry.name);
      return entry.isDirectory() ? filesUnder(path) : [path];
    });
  }

  it('no file holds a literal master key (hex or base64 of 32 bytes; image digests excepted)', () => {
    // docker/.env is the operator's own filled-in copy: ignored by git (docker/.gitignore) and by the build context.
    const files = filesUnder(DOCKER_DIR).filter((f) => f !== join(DOCKER_DIR, '.env'));
    expect(files.length).toBeGreaterThan(5);
    for (const file of files) {
      const text = readFileSync(file, 'utf8');
      const hex = [...text.matchAll(/(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])/g)].filter(
        (m) => !text.slice(Math.max(0, (m.index ?? 0) - 7), m.index).endsWith('sha256:'),
      );
      const base64 = text.match(/(?<![A-Za-z0-9+/])[A-Za-z0-9+/]{43}=/g) ?? [];
      expect({ file: relative(REPO_ROOT, file), keys: [...hex.map((m) => m[0]), ...base64] }).toEqual({
        file: relative(REPO_ROOT, file),
        keys: [],
      });
      expect(text).not.toContain(DEVELOPMENT_MASTER_KEY.toString('hex'));
    }
  });

  it('keeps docker/.env out of git and every .env out of the build context', () => {
    expect(readFileSync(join(DOCKER_DIR, '.gitignore'), 'utf8').split('\n')).toContain('.env');
    const ignored = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8').split('\n');
    expect(ignored).toEqual(expect.arrayContaining(['.env', '**/.env']));
  });
});

describe('docker/Dockerfile', () => {
  const stageNames = MAIN.map((s) => s.name);
  const build = MAIN.find((s) => s.name === 'build') as Stage;

  it('has a build stage, a shared runtime stage and the targets control-plane, worker and agent', () => {
    expect(stageNames).toEqual(expect.arrayContaining(['build', 'runtime', ...SERVER_TARGETS]));
    for (const target of SERVER_TARGETS) {
      expect(lineage(MAIN, target).map((s) => s.name)).toEqual(['runtime', target]);
    }
  });

  it('builds on the Node major version package.json asks for', () => {
    const major = /(\d+)/.exec(PACKAGE.engines.node)?.[1];
    for (const stage of ['build', 'runtime']) {
      expect(lineage(MAIN, stage)[0]?.base).toMatch(new RegExp(`^node:${major}-bookworm-slim(@sha256:[0-9a-f]{64})?$`));
    }
  });

  it('installs from the lock file, builds, and drops dev dependencies', () => {
    const runs = build.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/\bnpm ci\b/);
    expect(runs).toMatch(/\bnpm run build\b/);
    expect(runs).toMatch(/\bnpm prune --omit=dev\b/);
  });

  it('COPYs only paths that exist and that .dockerignore lets through', () => {
    const ignored = plainIgnorePatterns(REPO_ROOT);
    for (const stage of MAIN) {
      for (const copy of copies(stage)) {
        if (copy.from !== undefined) {
          expect(stageNames.slice(0, MAIN.indexOf(stage))).toContain(copy.from);
          continue;
        }
        for (const source of copy.sources) {
          const excludedBy = ignored.filter((p) => source === p || source.startsWith(`${p}/`));
          expect({ line: copy.line, source, exists: existsSync(join(REPO_ROOT, source)), excludedBy }).toEqual({
            line: copy.line,
            source,
            exists: true,
            excludedBy: [],
          });
        }
      }
    }
  });

  it('copies into the build stage everything tsconfig.build.json compiles', () => {
    const tsconfig = JSON.parse(readFileSync(join(REPO_ROOT, 'tsconfig.build.json'), 'utf8')) as { include: string[] };
    const copied = copies(build).flatMap((c) => (c.from === undefined ? c.sources : []));
    for (const [file] of [['tsconfig.build.json'], ['tsconfig.json'], ['package-lock.json']]) {
      expect(copied).toContain(file);
    }
    for (const include of tsconfig.include) {
      const covered = copied.some((source) => include === source || include.startsWith(`${source}/`));
      expect({ include, covered }).toEqual({ include, covered: true });
    }
    // The build script runs scripts/mark-executable.mjs.
    expect(copied).toContain('scripts');
  });

  it('gives the runtime only package.json, node_modules and dist from the build', () => {
    const runtime = MAIN.find((s) => s.name === 'runtime') as Stage;
    const fromBuild = copies(runtime).filter((c) => c.from === 'build');
    expect(fromBuild.flatMap((c) => c.sources).map((s) => s.replace(/^\/src\//, '')).sort()).toEqual([
      'dist',
      'node_modules',
      'package.json',
    ]);
  });

  it('runs every target as a non-root user under tini', () => {
    for (const target of SERVER_TARGETS) {
      const user = effective(MAIN, target, 'USER');
      expect({ target, user, root: isRoot(user) }).toEqual({ target, user, root: false });
      expect(execForm(effective(MAIN, target, 'ENTRYPOINT'))).toEqual(['/usr/bin/tini', '--']);
    }
  });

  it('runs the built entry points: node dist/apps/<app>/src/main.js, or a package.json bin', () => {
    const expected = { 'control-plane': 'dist/apps/control-plane/src/main.js', worker: 'dist/apps/worker/src/main.js' };
    for (const [target, main] of Object.entries(expected)) {
      expect(execForm(effective(MAIN, target, 'CMD'))).toEqual(['node', main]);
      expect(existsSync(join(REPO_ROOT, main))).toBe(true);
    }
    // rackseal and rackseal-agent are linked onto PATH from exactly the package.json bin targets.
    const links = new Map(
      MAIN.flatMap((s) => s.instructions)
        .filter((i) => i.keyword === 'RUN')
        .flatMap((i) => [...i.args.matchAll(/ln -s \/app\/(\S+) \/usr\/local\/bin\/(\S+)/g)])
        .map((m) => [m[2] as string, m[1] as string]),
    );
    expect(Object.fromEntries(links)).toEqual(PACKAGE.bin);
    // The agent's command is docker/agent-entrypoint.sh, copied onto PATH and made executable.
    expect(execForm(effective(MAIN, 'agent', 'CMD'))).toEqual(['rackseal-agent-entrypoint']);
    const agent = MAIN.find((s) => s.name === 'agent') as Stage;
    expect(copies(agent)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ sources: ['docker/agent-entrypoint.sh'], destination: '/usr/local/bin/rackseal-agent-entrypoint' }),
      ]),
    );
    expect(agent.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n')).toContain(
      'chmod 0755 /usr/local/bin/rackseal-agent-entrypoint',
    );
  });

  it('gives every Node target a default heap bound (NODE_OPTIONS --max-old-space-size)', () => {
    for (const target of SERVER_TARGETS) {
      const env = lineage(MAIN, target)
        .flatMap((s) => s.instructions.filter((i) => i.keyword === 'ENV'))
        .map((i) => i.args)
        .join(' ');
      expect({ target, heap: /\bNODE_OPTIONS=--max-old-space-size=\d+\b/.test(env) }).toEqual({ target, heap: true });
    }
  });

  it('health-checks the control plane with docker/healthcheck.mjs, and only the control plane', () => {
    const check = effective(MAIN, 'control-plane', 'HEALTHCHECK');
    expect(check).toMatch(/CMD \["node", "\/app\/healthcheck\.mjs"\]$/);
    const copied = copies(MAIN.find((s) => s.name === 'control-plane') as Stage);
    expect(copied).toEqual(
      expect.arrayContaining([expect.objectContaining({ sources: ['docker/healthcheck.mjs'], destination: './healthcheck.mjs' })]),
    );
    expect(effective(MAIN, 'worker', 'HEALTHCHECK')).toBeUndefined();
    expect(readFileSync(HEALTHCHECK_SCRIPT, 'utf8')).toContain("'/health/ready'");
  });
});

describe('docker/swtpm/Dockerfile', () => {
  const context = join(DOCKER_DIR, 'swtpm');

  it('installs swtpm and swtpm-tools on Debian bookworm and runs the entrypoint as a non-root user', () => {
    expect(SWTPM).toHaveLength(1);
    const stage = SWTPM[0] as Stage;
    expect(stage.base).toMatch(/^debian:bookworm/);
    const runs = stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    expect(runs).toMatch(/apt-get install .*\bswtpm\b.*\bswtpm-tools\b/);
    const user = effective(SWTPM, undefined, 'USER');
    expect(isRoot(user)).toBe(false);
    expect(execForm(effective(SWTPM, undefined, 'ENTRYPOINT'))).toEqual([
      '/usr/bin/tini',
      '--',
      '/usr/local/bin/swtpm-entrypoint',
    ]);
    expect(effective(SWTPM, undefined, 'HEALTHCHECK')).toMatch(/"\/usr\/local\/bin\/swtpm-entrypoint", "healthcheck"\]$/);
  });

  it('COPYs only files of its own build context', () => {
    for (const copy of copies(SWTPM[0] as Stage)) {
      for (const source of copy.sources) {
        expect({ source, exists: existsSync(join(context, source)) }).toEqual({ source, exists: true });
      }
    }
  });

  it('ships an executable entrypoint', () => {
    expect(() => accessSync(ENTRYPOINT, constants.X_OK)).not.toThrow();
    expect(readFileSync(ENTRYPOINT, 'utf8').startsWith('#!/bin/sh\n')).toBe(true);
  });
});

// ================================================================================================
// The scripts the images run, run here.

/** Exit status of the control plane's HEALTHCHECK command with the container's PORT/HOST. */
function healthcheck(env: NodeJS.ProcessEnv): { status: number | null; stderr: string } {
  const result = run(process.execPath, [HEALTHCHECK_SCRIPT], env);
  return { status: result.status, stderr: result.stderr };
}

describe('docker/healthcheck.mjs (the control-plane HEALTHCHECK)', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let controlPlane: RunningProcess | undefined;

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
  });

  afterAll(async () => {
    await controlPlane?.stop();
    await db.drop();
    await prefix.clear();
  });

  it('exits 0 against a ready control plane listening like the container does (HOST 0.0.0.0)', async () => {
    const port = await freePort();
    const started = await startControlPlane(testEnv(db, prefix.prefix, { HOST: '0.0.0.0', PORT: String(port) }));
    controlPlane = started.proc;
    expect(healthcheck({ PORT: String(port) })).toEqual({ status: 0, stderr: '' });
    expect(healthcheck({ PORT: String(port), HOST: LOCALHOST })).toEqual({ status: 0, stderr: '' });
  });

  it('exits 1 when nothing listens', async () => {
    const result = healthcheck({ PORT: String(await freePort()) });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/ECONNREFUSED/);
  });

  it('exits 1 when /health/ready answers 503', async () => {
    const server = createServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    });
    await new Promise<void>((resolve) => server.listen(0, LOCALHOST, resolve));
    try {
      const port = (server.address() as { port: number }).port;
      const result = await new Promise<{ status: number | null; stderr: string }>((resolve) => {
        // Asynchronously: the fake server answers from this very process.
        const child = spawn(process.execPath, [HEALTHCHECK_SCRIPT], { env: { PATH: process.env.PATH, PORT: String(port) } });
        let stderr = '';
        child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
        child.once('exit', (status) => resolve({ status, stderr }));
      });
      expect(result).toEqual({ status: 1, stderr: 'healthcheck: /health/ready answered 503\n' });
    } finally {
      server.close();
    }
  });
});

describe('docker/swtpm/entrypoint.sh (the swtpm sidecar), against the local swtpm', () => {
  let root: string;
  let port: number;
  const children = new Set<ReturnType<typeof spawn>>();
  const unregister = onWorkerExit(() => children.forEach((c) => c.kill('SIGKILL')));

  function entrypointEnv(): NodeJS.ProcessEnv {
    return { SWTPM_STATE_ROOT: root, SWTPM_PORT: String(port), SWTPM_BIND: LOCALHOST };
  }

  /**
   * Starts the sidecar's entrypoint and waits until its own health check passes. The port was free
   * when chosen; another suite's socket may take it before swtpm binds (the suites run in parallel),
   * so "Address already in use" picks another pair and starts again.
   */
  async function startSidecar(attempts = 5): Promise<{ stop(): Promise<number | null>; stderr(): string }> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await startSidecarOnce();
      } catch (error) {
        if (attempt >= attempts || !String((error as Error).message).includes('Address already in use')) {
          throw error;
        }
        [port] = await freePortPair();
      }
    }
  }

  async function startSidecarOnce(): Promise<{ stop(): Promise<number | null>; stderr(): string }> {
    const child = spawn(ENTRYPOINT, [], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...entrypointEnv() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    // Its last line before exec'ing swtpm, then its own health check. (spawnSync blocks this event
    // loop, so the output is looked at first, or it could still be undelivered when swtpm answers.)
    const ready = (): boolean =>
      stderr.includes('swtpm-entrypoint: serving TPM 2.0') && run(ENTRYPOINT, ['healthcheck'], entrypointEnv()).status === 0;
    while (!ready()) {
      if (child.exitCode !== null || Date.now() > deadline) {
        child.kill('SIGKILL');
        children.delete(child);
        throw new Error(`swtpm sidecar did not become healthy (exit ${child.exitCode}):\n${stderr}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    return {
      stderr: () => stderr,
      stop: async () => {
        child.kill('SIGTERM');
        const code = await exited;
        children.delete(child);
        return code;
      },
    };
  }

  /** TPM2_GetRandom(8) on the data channel; returns the response code. */
  function getRandom(): Promise<number> {
    return new Promise((resolve, reject) => {
      const socket = createConnection({ host: LOCALHOST, port }, () =>
        socket.write(Buffer.from('80010000000c0000017b0008', 'hex')),
      );
      let response = Buffer.alloc(0);
      socket.setTimeout(10_000, () => socket.destroy(new Error('no TPM response')));
      socket.on('data', (chunk: Buffer) => {
        response = Buffer.concat([response, chunk]);
        if (response.length >= 10 && response.length >= response.readUInt32BE(2)) {
          socket.end();
          resolve(response.readUInt32BE(6));
        }
      });
      socket.once('error', reject);
    });
  }

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'rackseal-swtpm-sidecar-'));
    [port] = await freePortPair();
  });

  afterAll(async () => {
    children.forEach((c) => c.kill('SIGKILL'));
    unregister();
    await rm(root, { recursive: true, force: true });
  });

  it('manufactures a TPM with vendor-signed EK certificates on first start and serves it', async () => {
    const sidecar = await startSidecar();
    try {
      expect(await getRandom()).toBe(0);
      expect(sidecar.stderr()).toContain('manufactured a TPM 2.0');

      const ekCerts = (await readdir(join(root, 'ek-certs'))).sort();
      expect(ekCerts).toEqual(['ek-rsa2048.crt', 'ek-secp384r1.crt']);
      // The vendor-ca directory holds the chain the EK certificates were issued under, and no keys.
      const vendor = (await readdir(join(root, 'vendor-ca'))).sort();
      expect(vendor).toEqual(['issuercert.pem', 'swtpm-localca-rootca-cert.pem']);
      const issuer = new X509Certificate(await readFile(join(root, 'vendor-ca', 'issuercert.pem')));
      const rootCa = new X509Certificate(await readFile(join(root, 'vendor-ca', 'swtpm-localca-rootca-cert.pem')));
      expect(issuer.verify(rootCa.publicKey)).toBe(true);
      for (const file of ekCerts) {
        const ek = new X509Certificate(await readFile(join(root, 'ek-certs', file)));
        expect({ file, signedByIssuer: ek.verify(issuer.publicKey) }).toEqual({ file, signedByIssuer: true });
      }
    } finally {
      expect(await sidecar.stop()).toBe(0);
    }
  });

  it('keeps the TPM across a restart (no second manufacturing) and stops cleanly on SIGTERM', async () => {
    const certPath = join(root, 'ek-certs', 'ek-rsa2048.crt');
    const before = { bytes: await readFile(certPath), mtimeMs: (await stat(certPath)).mtimeMs };
    const permall = statSync(join(root, 'tpm', 'tpm2-00.permall')).size;
    const sidecar = await startSidecar();
    try {
      expect(sidecar.stderr()).toContain('TPM already manufactured');
      expect(sidecar.stderr()).not.toContain('manufactured a TPM 2.0');
      expect(await getRandom()).toBe(0);
      expect((await stat(certPath)).mtimeMs).toBe(before.mtimeMs);
      expect(await readFile(certPath)).toEqual(before.bytes);
      expect(permall).toBeGreaterThan(0);
    } finally {
      expect(await sidecar.stop()).toBe(0);
    }
    // Stopped: the health check now fails.
    expect(run(ENTRYPOINT, ['healthcheck'], entrypointEnv()).status).not.toBe(0);
  });

  it('publishes the EK and vendor CA certificates, world-readable, in SWTPM_PUBLIC_DIR', async () => {
    const publicDir = join(root, 'public');
    const child = spawn(ENTRYPOINT, [], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ...entrypointEnv(), SWTPM_PUBLIC_DIR: publicDir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.add(child);
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 30_000;
    while (!stderr.includes('swtpm-entrypoint: serving TPM 2.0') && child.exitCode === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    children.delete(child);
    expect(stderr).toContain(`certificates published in ${publicDir}`);
    for (const [sub, names] of [
      ['ek-certs', ['ek-rsa2048.crt', 'ek-secp384r1.crt']],
      ['vendor-ca', ['issuercert.pem', 'swtpm-localca-rootca-cert.pem']],
    ] as const) {
      expect((await readdir(join(publicDir, sub))).sort()).toEqual([...names]);
      for (const name of names) {
        expect(await readFile(join(publicDir, sub, name))).toEqual(await readFile(join(root, sub, name)));
        expect({ name, mode: (statSync(join(publicDir, sub, name)).mode & 0o777).toString(8) }).toEqual({ name, mode: '644' });
      }
    }
    // Certificates only: nothing of the TPM's state or the local CA's key.
    expect((await readdir(publicDir)).sort()).toEqual(['ek-certs', 'vendor-ca']);
  });

  it('refuses unknown arguments with exit 2', () => {
    const result = run(ENTRYPOINT, ['frobnicate'], entrypointEnv());
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('unknown argument');
  });
});

describe('docker/agent.yaml and docker/agent-entrypoint.sh (the agents of compose.yaml)', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rackseal-agent-entrypoint-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("is a config the agent's own loader accepts, installing the two secrets fleet-setup creates", async () => {
    const config = await loadAgentConfig(join(DOCKER_DIR, 'agent.yaml'));
    expect(config.server).toBe('http://lb:8080');
    expect([...config.installs.keys()].sort()).toEqual(['demo-shared', 'demo-tls']);
    const created = [...readFileSync(FLEET_SETUP, 'utf8').matchAll(/rackseal secrets create (\S+)/g)].map((m) => m[1]);
    expect(created.sort()).toEqual(['demo-shared', 'demo-tls']);
  });

  /** Runs the entrypoint with a stand-in rackseal-agent that records its calls and exits as told. */
  function entrypoint(exits: { status: number; enroll: number }): { status: number | null; calls: string[] } {
    const bin = join(dir, `bin-${exits.status}-${exits.enroll}`);
    const log = join(bin, 'calls');
    run('mkdir', ['-p', bin]);
    const stub = join(bin, 'rackseal-agent');
    run('sh', [
      '-c',
      `cat > "${stub}" <<'STUB'
#!/bin/sh
echo "$*" >> "${log}"
case "$1" in
status) exit ${exits.status} ;;
enroll) exit ${exits.enroll} ;;
run) exit 0 ;;
esac
exit 9
STUB
chmod 0755 "${stub}"`,
    ]);
    const result = spawnSync(AGENT_ENTRYPOINT, ['--tpm', 'swtpm:swtpm-1:2321'], {
      encoding: 'utf8',
      env: { PATH: `${bin}:${process.env.PATH ?? ''}` },
    });
    const calls = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [];
    return { status: result.status, calls };
  }

  it('enrolls a machine with no usable enrollment, then runs the daemon with the same flags', () => {
    expect(entrypoint({ status: 1, enroll: 0 })).toEqual({
      status: 0,
      calls: ['status --offline --tpm swtpm:swtpm-1:2321', 'enroll --tpm swtpm:swtpm-1:2321', 'run --tpm swtpm:swtpm-1:2321'],
    });
  });

  it('goes straight to the daemon when enrolled, and exits with enroll\'s code when enrollment is refused', () => {
    expect(entrypoint({ status: 0, enroll: 0 })).toEqual({
      status: 0,
      calls: ['status --offline --tpm swtpm:swtpm-1:2321', 'run --tpm swtpm:swtpm-1:2321'],
    });
    expect(entrypoint({ status: 1, enroll: 1 })).toEqual({
      status: 1,
      calls: ['status --offline --tpm swtpm:swtpm-1:2321', 'enroll --tpm swtpm:swtpm-1:2321'],
    });
  });
});
