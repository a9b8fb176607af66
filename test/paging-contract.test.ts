/**
 * Issue 10 item 6: paging (`limit`, `after`) is declared once, in @rackseal/api-contracts, and both
 * sides take it from there: the control plane's OpenAPI document (generated from its DTOs) and the
 * `rackseal` list commands, which refuse a value outside the contract before sending anything.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_SEQUENCE_CURSOR, MAX_TEXT_CURSOR_LENGTH, MIN_PAGE_SIZE } from '@rackseal/api-contracts';
import { runRacksealCli } from './support/cli-runner';

interface Parameter {
  name: string;
  in: string;
  schema: Record<string, unknown>;
}

const OPENAPI = JSON.parse(readFileSync(join(__dirname, '..', 'openapi.json'), 'utf8')) as { paths: Record<string, { get: { parameters: Parameter[] } }> };

function queryParameter(path: string, name: string): Record<string, unknown> {
  const parameter = OPENAPI.paths[path]!.get.parameters.find((p) => p.in === 'query' && p.name === name);
  if (parameter === undefined) {
    throw new Error(`GET ${path} declares no query parameter ${name}`);
  }
  return parameter.schema;
}

/** A server nobody listens on: a refusal must come before any request, so it is never contacted. */
const NO_SERVER = { RACKSEAL_SERVER: 'http://127.0.0.1:1', RACKSEAL_TOKEN: 'rks_unused' };

describe('the paging contract', () => {
  it.each(['/v1/audit', '/v1/machines'])('GET %s takes limit from it', (path) => {
    expect(queryParameter(path, 'limit')).toEqual({ type: 'integer', minimum: MIN_PAGE_SIZE, maximum: MAX_PAGE_SIZE, default: DEFAULT_PAGE_SIZE });
  });

  it('the cursors of GET /v1/audit (a sequence number) and GET /v1/machines (a serial) take their bounds from it', () => {
    expect(queryParameter('/v1/audit', 'after')).toMatchObject({ type: 'integer', minimum: 0, maximum: MAX_SEQUENCE_CURSOR });
    expect(queryParameter('/v1/machines', 'after')).toMatchObject({ type: 'string', maxLength: MAX_TEXT_CURSOR_LENGTH });
  });

  it.each([
    ['audit', 'records'],
    ['machines', 'machines'],
  ])('`rackseal %s list --help` states the same limits', (command, items) => {
    const help = runRacksealCli([command, 'list', '--help']);
    expect(help.status).toBe(0);
    expect(help.stdout.replace(/\s+/g, ' ')).toContain(`--limit <n> at most this many ${items} (${MIN_PAGE_SIZE}-${MAX_PAGE_SIZE}, default ${DEFAULT_PAGE_SIZE})`);
  });

  it.each([
    [['audit', 'list', '--limit', String(MAX_PAGE_SIZE + 1)], `--limit must be a whole number from ${MIN_PAGE_SIZE} to ${MAX_PAGE_SIZE}.`],
    [['machines', 'list', '--limit', String(MIN_PAGE_SIZE - 1)], `--limit must be a whole number from ${MIN_PAGE_SIZE} to ${MAX_PAGE_SIZE}.`],
    [['machines', 'list', '--limit', '1e2'], `--limit must be a whole number from ${MIN_PAGE_SIZE} to ${MAX_PAGE_SIZE}.`],
    [['audit', 'list', '--after', '-1'], `--after must be a whole number from 0 to ${MAX_SEQUENCE_CURSOR}.`],
    [['machines', 'list', '--after', `${'S'.repeat(MAX_TEXT_CURSOR_LENGTH + 1)}`], `--after must be at most ${MAX_TEXT_CURSOR_LENGTH} characters.`],
  ])('rackseal %s is refused (exit 2) before any request', (args, message) => {
    const run = runRacksealCli(args, { env: NO_SERVER });
    expect([run.status, run.stdout]).toEqual([2, '']);
    expect(run.stderr).toContain(message);
    expect(run.stderr).not.toContain('cannot reach');
  });
});
