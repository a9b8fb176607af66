/**
 * Acceptance sweep of issue 9: every operation of the OpenAPI document the built control plane
 * serves, called with an admin token and attacked the way an operator's typo or an attacker would:
 * NUL bytes and control characters in every path parameter, query parameter, JSON string field and
 * CSV cell; huge, negative and non-numbers in every parameter; JSON nested 100,000 deep; the wrong
 * Content-Type. Nothing may answer 5xx, the process must stay up and ready, and its log must hold
 * no token. Driven by the document, so a new route is swept without touching this file.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createTestDatabase, type TestDatabase } from './support/database';
import { runRacksealCli } from './support/cli-runner';
import { type RunningProcess, startControlPlane } from './support/processes';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testEnv } from './support/test-config';

interface Schema {
  $ref?: string;
  type?: string;
  format?: string;
  enum?: unknown[];
  items?: Schema;
  properties?: Record<string, Schema>;
  required?: string[];
  allOf?: Schema[];
  oneOf?: Schema[];
  example?: unknown;
}

interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema?: Schema;
}

interface Operation {
  operationId: string;
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema?: Schema; example?: unknown }> };
  security?: unknown[];
  'x-required-scope'?: string | null;
}

interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema> };
}

interface Probe {
  readonly label: string;
  readonly method: string;
  readonly path: string;
  readonly query?: Record<string, string>;
  readonly contentType?: string;
  readonly body?: string;
  readonly token?: string;
  readonly encoding?: string;
}

/** Strings that reach PostgreSQL as text or an operator's terminal. */
const BAD_STRINGS: readonly string[] = [
  'a\u0000b',
  '\u0000',
  'x\u001b[2J\u001b[31mred',
  'line\nforged: yes',
  'cr\rover',
  'csi\u009b2J',
  'bidi\u202eexe.txt',
  'del\u007f',
  "quote'\"\\",
  // JSON.stringify writes these as \ud800 escapes: valid JSON, refused by PostgreSQL's jsonb.
  'lone\ud800high',
  'lone\udc00low',
];

/** Numbers out of every column's range, and things that are not numbers at all. */
const BAD_NUMBERS: readonly string[] = ['9223372036854775807', '9223372036854775808', '1e20', '-1', 'NaN', 'Infinity', '1.5', '0x10', '', '9'.repeat(400)];

const HTTP_METHODS = new Set(['get', 'post', 'put', 'patch', 'delete']);
const DEEP = 100_000;


/**
 * fetch, sent again once when the pooled keep-alive connection it picked had just been closed by the
 * server (undici's "other side closed" before any response byte): after a pause longer than the
 * server's keep-alive timeout — e.g. a token issued through the CLI between two requests on a loaded
 * machine — the client may reuse a socket the server is closing. The request never reached the
 * handler, so sending it on a new connection changes nothing the sweep asserts.
 */
async function fetchOnLiveConnection(url: URL, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const cause = (error as { cause?: { code?: string } }).cause;
    if (cause?.code !== 'UND_ERR_SOCKET') {
      throw error;
    }
    return fetch(url, init);
  }
}

describe('operator API sweep (issue 9 acceptance)', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let proc: RunningProcess;
  let baseUrl: string;
  let adminToken: string;
  let document: OpenApiDocument;

  const issueToken = (name: string, scope: string): string => {
    const run = runRacksealCli(['token', 'create', '--name', name, '--scope', scope], { env: { DATABASE_URL: db.url } });
    expect(run.status).toBe(0);
    return run.stdout.trim();
  };

  const send = async (probe: Probe): Promise<{ status: number; text: string; headers: Headers }> => {
    const url = new URL(probe.path, baseUrl);
    for (const [name, value] of Object.entries(probe.query ?? {})) {
      url.searchParams.append(name, value);
    }
    const headers: Record<string, string> = { Authorization: `Bearer ${probe.token ?? adminToken}` };
    if (probe.contentType !== undefined) {
      headers['Content-Type'] = probe.contentType;
    }
    if (probe.encoding !== undefined) {
      headers['Content-Encoding'] = probe.encoding;
    }
    const response = await fetchOnLiveConnection(url, { method: probe.method, headers, body: probe.body });
    return { status: response.status, text: await response.text(), headers: response.headers };
  };

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    ({ proc, baseUrl } = await startControlPlane(testEnv(db, prefix.prefix)));
    adminToken = issueToken('sweep-admin', 'admin');
    document = (await (await fetch(new URL('/docs/openapi.json', baseUrl))).json()) as OpenApiDocument;
  });

  afterAll(async () => {
    await proc?.stop();
    await prefix?.clear();
    await db?.drop();
  });

  const operations = (): { method: string; path: string; op: Operation }[] =>
    Object.entries(document.paths).flatMap(([path, item]) =>
      Object.entries(item)
        .filter(([method]) => HTTP_METHODS.has(method))
        .map(([method, op]) => ({ method: method.toUpperCase(), path, op })),
    );

  const resolve = (schema: Schema | undefined): Schema => {
    let current = schema ?? {};
    while (current.$ref !== undefined) {
      current = document.components.schemas[current.$ref.replace('#/components/schemas/', '')] ?? {};
    }
    if (current.allOf?.length === 1) {
      return resolve(current.allOf[0]);
    }
    return current;
  };

  /** A plausible value for a schema: required properties only, plus whatever `include` asks for. */
  const sample = (schema: Schema | undefined, include: readonly string[] = []): unknown => {
    const s = resolve(schema);
    if (s.enum !== undefined && s.enum.length > 0) {
      return s.enum[0];
    }
    switch (s.type) {
      case 'object': {
        const result: Record<string, unknown> = {};
        for (const [name, property] of Object.entries(s.properties ?? {})) {
          if ((s.required ?? []).includes(name) || include[0] === name) {
            result[name] = sample(property, include[0] === name ? include.slice(1) : []);
          }
        }
        return result;
      }
      case 'array':
        return [sample(s.items, include[0] === '0' ? include.slice(1) : [])];
      case 'boolean':
        return false;
      case 'integer':
      case 'number':
        return 1;
      default:
        return s.format === 'uuid' ? randomUUID() : 'x';
    }
  };

  /** Paths (`files.0.name`) of every string and number leaf a JSON body schema has. */
  const leaves = (schema: Schema | undefined, prefixPath: string[] = [], depth = 0): { path: string[]; kind: 'string' | 'number' }[] => {
    const s = resolve(schema);
    if (depth > 8) {
      return [];
    }
    if (s.type === 'object') {
      return Object.entries(s.properties ?? {}).flatMap(([name, property]) => leaves(property, [...prefixPath, name], depth + 1));
    }
    if (s.type === 'array') {
      return leaves(s.items, [...prefixPath, '0'], depth + 1);
    }
    if (s.type === 'integer' || s.type === 'number') {
      return [{ path: prefixPath, kind: 'number' }];
    }
    return s.type === 'string' && s.enum === undefined ? [{ path: prefixPath, kind: 'string' }] : [];
  };

  const setAt = (root: unknown, path: readonly string[], value: unknown): unknown => {
    const copy = structuredClone(root) as Record<string, unknown>;
    let node = copy;
    path.slice(0, -1).forEach((key) => (node = node[key] as Record<string, unknown>));
    node[path[path.length - 1]!] = value;
    return copy;
  };

  /** The operation's path with harmless values in its parameters, except `target`, which gets `value`. */
  const fillPath = ({ path, op }: { path: string; op: Operation }, target?: string, value?: string, raw = false): string =>
    path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
      if (name === target) {
        // A URL cannot carry an unpaired surrogate (encodeURIComponent throws on one); fetch would send U+FFFD.
        const sendable = value!.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD');
        return raw ? value! : encodeURIComponent(sendable);
      }
      const schema = resolve((op.parameters ?? []).find((p) => p.name === name)?.schema);
      return schema.format === 'uuid' ? randomUUID() : 'ab'.repeat(32);
    });

  /** Every attack on one operation. */
  const probesFor = (operation: { method: string; path: string; op: Operation }): Probe[] => {
    const { method, path, op } = operation;
    const parameters = op.parameters ?? [];
    const fill = (target?: string, value?: string, raw = false): string => fillPath(operation, target, value, raw);
    const json = Object.entries(op.requestBody?.content ?? {}).find(([type]) => type === 'application/json');
    const other = Object.entries(op.requestBody?.content ?? {}).find(([type]) => type !== 'application/json');
    const baseline: Pick<Probe, 'contentType' | 'body'> =
      json !== undefined
        ? { contentType: 'application/json', body: JSON.stringify(sample(json[1].schema)) }
        : other !== undefined
          ? { contentType: other[0], body: String(other[1].example ?? 'x') }
          : {};
    const probes: Probe[] = [];
    const at = (label: string, extra: Partial<Probe>): void => void probes.push({ label: `${method} ${path} ${label}`, method, path: fill(), ...baseline, ...extra });

    for (const parameter of parameters) {
      for (const value of [...BAD_STRINGS, ...BAD_NUMBERS]) {
        if (parameter.in === 'path') {
          at(`path ${parameter.name}=${JSON.stringify(value)}`, { path: fill(parameter.name, value === '' ? ' ' : value) });
          if (value === '') {
            at(`path ${parameter.name} with malformed percent-encoding`, { path: fill(parameter.name, '%E0%A4%A', true) });
          }
        } else if (parameter.in === 'query') {
          at(`query ${parameter.name}=${JSON.stringify(value)}`, { query: { [parameter.name]: value } });
        }
      }
    }
    // A query parameter no route declares, and one given twice.
    at('unknown query parameter with NUL', { query: { 'x\u0000': '\u0000' } });
    if (json !== undefined) {
      const schema = json[1].schema;
      for (const leaf of leaves(schema)) {
        const base = sample(schema, leaf.path);
        if (leaf.kind === 'string') {
          for (const value of BAD_STRINGS) {
            at(`body ${leaf.path.join('.')}=${JSON.stringify(value)}`, { body: JSON.stringify(setAt(base, leaf.path, value)) });
          }
        } else {
          // Number literals as written (JSON.stringify would round 9223372036854775807), and a string.
          for (const literal of ['9223372036854775807', '1e20', '-1', '1.5', '1e400', '"NaN"']) {
            at(`body ${leaf.path.join('.')}=${literal}`, { body: JSON.stringify(setAt(base, leaf.path, '\u0001RAW')).replace('"\\u0001RAW"', literal) });
          }
        }
      }
      for (const body of ['null', '"\\u0000"', '[]', '{"a\\u0000":1}', '1e400']) {
        at(`body ${body}`, { body });
      }
      at(`body nested ${DEEP} deep (arrays)`, { body: `${'['.repeat(DEEP)}${']'.repeat(DEEP)}` });
      at(`body nested ${DEEP} deep (objects)`, { body: `${'{"a":'.repeat(DEEP)}1${'}'.repeat(DEEP)}` });
      at('text/plain body', { contentType: 'text/plain', body: 'name=x' });
    } else if (other !== undefined) {
      const [header, row] = String(other[1].example ?? 'x\nx').split('\n');
      const cells = row!.split(',');
      cells.forEach((_cell, index) => {
        for (const value of BAD_STRINGS) {
          const bad = cells.map((c, i) => (i === index ? value : c)).join(',');
          at(`${other[0]} cell ${index}=${JSON.stringify(value)}`, { body: `${header}\n${bad}\n` });
        }
      });
      at(`${other[0]} body nested ${DEEP} deep`, { body: `${'['.repeat(DEEP)}${']'.repeat(DEEP)}` });
      at('JSON body instead', { contentType: 'application/json', body: '{}' });
    } else if (method !== 'GET') {
      at(`unexpected JSON body nested ${DEEP} deep`, { contentType: 'application/json', body: `${'['.repeat(DEEP)}${']'.repeat(DEEP)}` });
    }
    if (method !== 'GET') {
      // Whatever the route reads, the body parsers run first.
      at('a form with 2,000 parameters', { contentType: 'application/x-www-form-urlencoded', body: Array.from({ length: 2000 }, (_, i) => `a${i}=1`).join('&') });
      at('a form nested 200 deep', { contentType: 'application/x-www-form-urlencoded', body: `a${'[b]'.repeat(200)}=1` });
      at('a JSON body that is not gzip', { contentType: 'application/json', body: '{}', encoding: 'gzip' });
    }
    return probes;
  };

  it('the document lists the operator routes it sweeps', () => {
    const names = operations().map(({ method, path }) => `${method} ${path}`);
    expect(names).toEqual(expect.arrayContaining(['POST /v1/tokens', 'GET /v1/audit', 'GET /v1/machines', 'POST /v1/vendor-cas', 'POST /v1/inventory/imports']));
  });

  it('answers no attack on any operation with a 5xx, nor with a status the document does not list for it', async () => {
    const failures: string[] = [];
    const undocumented = new Set<string>();
    let sent = 0;
    for (const operation of operations().filter(({ op }) => op.security !== undefined)) {
      for (const probe of probesFor(operation)) {
        const response = await send(probe);
        sent++;
        if (response.status >= 500) {
          failures.push(`${probe.label} -> ${response.status} ${response.text.slice(0, 200)}`);
        }
        if (!(String(response.status) in (operation.op as Operation & { responses: Record<string, unknown> }).responses)) {
          undocumented.add(`${operation.method} ${operation.path} ${response.status}`);
        }
      }
    }
    expect(failures).toEqual([]);
    expect([...undocumented]).toEqual([]);
    expect(sent).toBeGreaterThan(400);
  });

  it('refuses the wrong Content-Type on every operation with a body with 415 naming the right one', async () => {
    // A signed node route authenticates first: its guard reads the body as signed JSON and refuses anything else
    // as 401 node.malformed (test/key-certification.test.ts), before any Content-Type check could answer 415.
    for (const operation of operations().filter(({ op }) => op.requestBody !== undefined && !('x-node-authentication' in op))) {
      const types = Object.keys(operation.op.requestBody!.content);
      const wrong = types.includes('application/json') ? 'text/plain' : 'application/json';
      const response = await send({ label: '', method: operation.method, path: fillPath(operation), contentType: wrong, body: '{}' });
      expect([operation.path, response.status]).toEqual([operation.path, 415]);
      expect(types.some((type) => response.text.includes(type))).toBe(true);
    }
  });

  it('enforces exactly the scope each operation documents (x-required-scope)', async () => {
    const auditReader = issueToken('sweep-audit-reader', 'audit:read');
    const caReader = issueToken('sweep-ca-reader', 'vendor-ca:read');
    for (const operation of operations().filter(({ op }) => op.security !== undefined)) {
      const scope = operation.op['x-required-scope'];
      const token = scope === 'audit:read' ? caReader : auditReader;
      const response = await send({ label: '', method: operation.method, path: fillPath(operation), token });
      expect([operation.path, response.status, JSON.parse(response.text).message]).toEqual([operation.path, 403, `this token lacks the "${scope}" scope`]);
    }
  });

  it('is still alive and ready afterwards', async () => {
    expect(proc.child.exitCode).toBeNull();
    const ready = await fetch(new URL('/health/ready', baseUrl));
    expect(ready.status).toBe(200);
  });

  it('logs a URL carrying a token with its query redacted (item 10), and no token anywhere in its log', async () => {
    const response = await fetch(new URL(`/v1/audit?limit=1&access_token=${adminToken}`, baseUrl), { headers: { Authorization: `Bearer ${adminToken}` } });
    // Refused (the route takes no such parameter), but logged like every request.
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ message: ['property access_token should not exist'] });
    const requestId = response.headers.get('x-request-id');
    const line = await proc.waitForLog((l) => (l.req as { id?: string } | undefined)?.id === requestId && l.res !== undefined);
    expect(line.req).toEqual({ id: requestId, method: 'GET', url: '/v1/audit?limit=[redacted]&access_token=[redacted]' });
    const hash = createHash('sha256').update(adminToken).digest();
    for (const secret of [adminToken.slice(4), hash.toString('hex'), hash.toString('base64'), `\\\\x${hash.toString('hex')}`]) {
      expect(proc.stdout.includes(secret) || proc.stderr.includes(secret)).toBe(false);
    }
  });
});
