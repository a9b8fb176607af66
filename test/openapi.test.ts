/**
 * The checked-in openapi.json is what the built generator prints: an API change without a
 * regenerated document fails here, with the command that fixes it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ALL_SCOPES, type Scope } from '@rackseal/api-tokens';
import { DIST } from './support/processes';

const REPO_ROOT = join(__dirname, '..');
const CHECKED_IN = join(REPO_ROOT, 'openapi.json');
const GENERATOR = join(DIST, 'apps/control-plane/src/openapi.js');
interface Operation {
  security?: Record<string, string[]>[];
  'x-required-scope'?: string | null;
  description?: string;
  parameters?: unknown[];
  requestBody?: { content?: Record<string, unknown> };
  responses: Record<string, unknown>;
}

const HOW_TO_FIX = 'openapi.json is stale: run `npm run openapi` and commit the result';

interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, unknown>>;
  components?: { schemas?: Record<string, unknown> };
}

describe('openapi.json', () => {
  let generated: OpenApiDocument;
  let generatedText: string;

  beforeAll(() => {
    // Only PATH: the generator must need neither a database, nor Redis, nor any configuration.
    const run = spawnSync(process.execPath, [GENERATOR], {
      env: { PATH: process.env.PATH },
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (run.status !== 0) {
      throw new Error(`${GENERATOR} exited with ${String(run.status ?? run.signal)}:\n${run.stderr}`);
    }
    generatedText = run.stdout;
    generated = JSON.parse(generatedText) as OpenApiDocument;
  });

  it('matches what the built generator prints', () => {
    const checkedIn = JSON.parse(readFileSync(CHECKED_IN, 'utf8')) as unknown;
    try {
      expect(generated).toEqual(checkedIn);
    } catch (error) {
      // Jest's diff shows what changed; the first line says how to fix it.
      throw new Error(`${HOW_TO_FIX}\n\n${(error as Error).message}`);
    }
  });

  it('is byte for byte the generator output, so regenerating leaves no diff', () => {
    expect(readFileSync(CHECKED_IN, 'utf8') === generatedText ? 'identical' : HOW_TO_FIX).toBe('identical');
  });

  it('describes the rackseal API with its health endpoints', () => {
    expect(generated.openapi).toMatch(/^3\./);
    expect(generated.info.title).toBe('rackseal');
    expect(generated.paths['/health/live']).toHaveProperty('get');
    expect(generated.paths['/health/ready']).toHaveProperty('get');
    expect(generated.components?.schemas).toHaveProperty('ReadinessReport');
  });

  it('describes the bearer token as what it is: opaque rks_…, not a JWT', () => {
    const schemes = (generated.components as { securitySchemes?: Record<string, { bearerFormat?: string; scheme?: string }> }).securitySchemes;
    expect(schemes?.bearer?.scheme).toBe('bearer');
    expect(schemes?.bearer?.bearerFormat).not.toMatch(/JWT/i);
    expect(schemes?.bearer?.bearerFormat).toContain('rks_');
  });

  it('names the scope of every authenticated operation and documents its error responses', () => {
    const operations = Object.entries(generated.paths).flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => ({ name: `${method.toUpperCase()} ${path}`, op: op as Operation })),
    );
    const authenticated = operations.filter(({ op }) => op.security !== undefined);
    expect(authenticated.length).toBeGreaterThan(10);
    for (const { name, op } of authenticated) {
      expect([name, ALL_SCOPES.includes(op['x-required-scope'] as Scope)]).toEqual([name, true]);
      expect([name, op.description]).toEqual([name, expect.stringContaining(`\`${op['x-required-scope']}\` scope`)]);
      expect([name, Object.keys(op.responses)]).toEqual([name, expect.arrayContaining(['401', '403', '503'])]);
      if (op.requestBody !== undefined || (op.parameters?.length ?? 0) > 0) {
        expect([name, Object.keys(op.responses)]).toEqual([name, expect.arrayContaining(['400'])]);
      }
      if (op.requestBody !== undefined) {
        expect([name, Object.keys(op.responses)]).toEqual([name, expect.arrayContaining(['413', '415'])]);
      }
    }
    // Only health and the metrics (counts and ages, nothing identifying) are public; the node API's
    // routes take no operator token and say so: the enrollment routes are authenticated by the
    // protocol, the later ones (x-node-authentication) by the signed node request, with a 401. The
    // dashboard's session routes take a token in the body (sign-in) or read the session cookie
    // themselves (who am I, sign-out: test/ui-session.test.ts).
    const withoutToken = operations.filter(({ op }) => op.security === undefined);
    expect(withoutToken.map(({ name }) => name).sort()).toEqual([
      'DELETE /v1/session',
      'GET /health/live',
      'GET /health/ready',
      'GET /metrics',
      'GET /node/v1/approvals',
      'GET /node/v1/deliveries',
      'GET /node/v1/keys/current',
      'GET /node/v1/self',
      'GET /v1/session',
      'POST /node/v1/attestations',
      'POST /node/v1/attestations/{id}/finish',
      'POST /node/v1/deliveries/poll',
      'POST /node/v1/deliveries/{id}/ack',
      'POST /node/v1/keys',
      'POST /node/v1/keys/challenges',
      'POST /v1/session',
    ]);
    for (const { name, op } of withoutToken.filter(({ name }) => name.includes(' /node/'))) {
      const node = op as Operation & { 'x-node-api'?: boolean; 'x-node-authentication'?: string };
      expect([name, node['x-node-api'], op.description]).toEqual([name, true, expect.stringContaining('never with an operator token')]);
      expect([name, Object.keys(op.responses)]).toEqual([name, expect.not.arrayContaining(['403'])]);
      if (name.includes('/attestations')) {
        expect([name, node['x-node-authentication'], Object.keys(op.responses)]).toEqual([name, undefined, expect.arrayContaining(['400', '404', '409', '413', '415', '503'])]);
        expect([name, Object.keys(op.responses)]).toEqual([name, expect.not.arrayContaining(['401'])]);
      } else {
        expect([name, node['x-node-authentication'], Object.keys(op.responses)]).toEqual([name, 'RackSeal-HMAC-SHA256', expect.arrayContaining(['401', '503'])]);
        expect([name, op.description]).toEqual([name, expect.stringContaining('Signed with the node credential')]);
      }
    }
  });

  it('documents the 404 of an unknown id and the 408 of a stalled upload', () => {
    const responses = (path: string, method: string) => Object.keys((generated.paths[path] as Record<string, Operation>)[method]!.responses);
    expect(responses('/v1/tokens/{id}', 'delete')).toContain('404');
    expect(responses('/v1/inventory/imports/{id}', 'get')).toContain('404');
    expect(responses('/v1/inventory/imports', 'post')).toContain('408');
  });

  it('gives the CSV import a text/csv request body', () => {
    const op = generated.paths['/v1/inventory/imports']!.post as Operation;
    expect(Object.keys(op.requestBody?.content ?? {})).toEqual(['text/csv']);
    expect(op['x-required-scope']).toBe('inventory:write');
  });

  it('has a version matching package.json', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(generated.info.version).toBe(pkg.version);
  });
});
