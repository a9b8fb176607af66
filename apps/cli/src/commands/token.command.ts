import type { IssuedToken, TokenSummary } from '@rackseal/api-contracts';
import type { Command } from 'commander';
import { CliError } from '@rackseal/command-line';
import { withDatabase } from '../database';
import { operatorName } from '../operator-name';
import { commandPath, ServerClient, withServerOptions } from '../server-client';
import { safe, table, terminalJson } from '../terminal-text';
import { explicitServer, explicitServerOption } from './explicit-server';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `rackseal token create|list|revoke`. `create` is the bootstrap: by default it issues the token
 * straight in PostgreSQL (DATABASE_URL), migrating a fresh database first, because the first admin
 * token of a deployment cannot come from an API that needs a token; with `--server` it issues
 * through POST /v1/tokens like any later token. `list` and `revoke` are server commands (scope
 * `admin`). The token is printed once on stdout; only its hash is stored; issuance is audited.
 */
export function registerToken(program: Command): void {
  const token = program.command('token').description('operator tokens: bootstrap one in PostgreSQL, then list and revoke through the control plane');

  token
    .command('create')
    .description('issue an operator token, printed once: in the database (DATABASE_URL; migrates a fresh one), or with --server through the control plane')
    .requiredOption('--name <name>', 'what the token is for, e.g. "admin" or "inventory-importer"')
    .requiredOption('--scope <scope...>', 'scopes to grant, e.g. admin, inventory:write')
    .addOption(explicitServerOption())
    .option('--token <token>', 'with --server: an admin token (default: $RACKSEAL_TOKEN)')
    .action(async (options: { name: string; scope: string[]; server?: string | true; token?: string }, command: Command) => {
      const server = explicitServer(options);
      if (server === undefined && options.token !== undefined) {
        throw CliError.usage('token create: --token is for --server (issuing through the control plane); the database path needs none');
      }
      const issued = server === undefined ? await issueInDatabase(options.name, options.scope) : await issueThroughServer(ServerClient.fromOptions(server, commandPath(command)), options.name, options.scope);
      process.stdout.write(`${issued.token}\n`);
      process.stderr.write(`issued token ${issued.id} "${safe(issued.name)}" with scopes ${issued.scopes.join(', ')}; it is shown only once\n`);
    });

  withServerOptions(
    token
      .command('list')
      .description('list operator tokens (never the tokens themselves): scopes, who made them, last use, revocation')
      .option('--json', 'machine-readable output'),
  ).action(async (options: { json?: boolean }, command: Command) => {
    const { body } = await ServerClient.forCommand(command).get<TokenSummary[]>('v1/tokens');
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    const rows = body.map((t) => [t.id, t.name, t.scopes.join(','), day(t.createdAt), t.createdBy, t.lastUsedAt === null ? 'never' : minute(t.lastUsedAt), t.revokedAt === null ? 'active' : `revoked ${minute(t.revokedAt)}`]);
    process.stdout.write(`${table(['ID', 'NAME', 'SCOPES', 'CREATED', 'BY', 'LAST USED', 'STATE'], rows)}${body.length} token(s)\n`);
  });

  withServerOptions(
    token
      .command('revoke')
      .description('revoke an operator token at once (it stays listed as revoked)')
      .argument('<id>', 'the token id as `token list` shows it (not the token itself)'),
  ).action(async (id: string, _options: unknown, command: Command) => {
    const client = ServerClient.forCommand(command);
    if (!UUID.test(id)) {
      // Someone may paste the token instead of its id: never echo it.
      const shown = id.startsWith('rks_') ? 'that is a token itself,' : `${JSON.stringify(safe(id.slice(0, 100)))} is`;
      throw CliError.usage(`${client.action}: ${shown} not a token id (a UUID, as \`rackseal token list\` shows it)`);
    }
    await client.delete(`v1/tokens/${id}`);
    process.stdout.write(`revoked token ${id}\n`);
  });
}

async function issueInDatabase(name: string, scopes: string[]): Promise<IssuedToken> {
  const [{ AuditLog }, { ApiTokens, ApiTokenEntity, InvalidScopeError, InvalidTokenNameError, ALL_SCOPES }, platform] = await Promise.all([
    import('@rackseal/audit'),
    import('@rackseal/api-tokens'),
    import('@rackseal/platform'),
  ]);
  return withDatabase({ schema: 'migrate', entities: [ApiTokenEntity] }, async (dataSource) => {
    const clock = new platform.SystemClock();
    const tokens = new ApiTokens(dataSource, new AuditLog(dataSource, clock), clock, new platform.CryptoRandomSource());
    return tokens.issue(name, scopes, `cli:${operatorName()}`).catch((error: unknown) => {
      // A bad name is an InvalidScopeError too (one catch for callers); only a bad scope lists the known ones.
      if (error instanceof InvalidTokenNameError) {
        throw CliError.usage(error.message);
      }
      if (error instanceof InvalidScopeError) {
        throw CliError.usage(`${error.message} (known: ${ALL_SCOPES.join(', ')})`);
      }
      throw error;
    });
  });
}

async function issueThroughServer(client: ServerClient, name: string, scopes: string[]): Promise<IssuedToken> {
  const { body } = await client.post<IssuedToken>('v1/tokens', { name, scopes });
  return body;
}

function day(iso: string): string {
  return iso.slice(0, 10);
}

function minute(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')}Z`;
}
