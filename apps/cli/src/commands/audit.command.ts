import type { AuditChainVerification, AuditRecordView } from '@rackseal/api-contracts';
import type { Command } from 'commander';
import { withDatabase } from '../database';
import { EXIT } from '@rackseal/command-line';
import { commandPath, ServerClient, withServerOptions } from '../server-client';
import { safe, table } from '../terminal-text';
import { explicitServer, explicitServerOption } from './explicit-server';
import { nextPageHint, pageSize, pageSizeOption, sequenceCursorOption } from './paging-options';

/**
 * `rackseal audit verify|list`. `verify` walks the hash chain straight from PostgreSQL
 * (DATABASE_URL), for an auditor who trusts neither the API nor the control plane; with `--server`
 * it asks the control plane to (GET /v1/audit/verify). Exit 0 intact, 1 tampered, 2 unusable. `list`
 * reads the records in order, paged (GET /v1/audit, scope `audit:read`).
 */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('audit log tools');

  audit
    .command('verify')
    .description('verify the audit hash chain directly in PostgreSQL (uses DATABASE_URL), or with --server through the control plane')
    .option('--json', 'machine-readable output')
    .addOption(explicitServerOption())
    .option('--token <token>', 'with --server: a token with audit:read (default: $RACKSEAL_TOKEN)')
    .action(async (options: { json?: boolean; server?: string | true; token?: string }, command: Command) => {
      const server = explicitServer(options);
      const verdict =
        server === undefined
          ? await withDatabase({ schema: 'current' }, async (dataSource) => (await import('@rackseal/audit')).verifyAuditChain(dataSource))
          : (await ServerClient.fromOptions(server, commandPath(command)).get<AuditChainVerification>('v1/audit/verify')).body;
      if (options.json === true) {
        process.stdout.write(`${JSON.stringify(verdict)}\n`);
      } else if (verdict.ok) {
        process.stdout.write(`audit chain intact: ${verdict.records} records, head ${verdict.headHash}\n`);
      }
      if (!verdict.ok) {
        process.stderr.write(`audit chain broken at record ${verdict.problem.seq}: ${safe(verdict.problem.message)}\n`);
        process.exitCode = EXIT.invalid;
      }
    });

  withServerOptions(
    audit
      .command('list')
      .description('read audit records in order (oldest first); page with --after')
      .addOption(sequenceCursorOption('only records after this sequence number (the last one of the previous page)'))
      .addOption(pageSizeOption('records'))
      .option('--json', 'machine-readable output (the records as the API returns them, hashes included)'),
  ).action(async (options: { after?: number; limit?: number; json?: boolean }, command: Command) => {
    const limit = pageSize(options.limit);
    const { body } = await ServerClient.forCommand(command).get<AuditRecordView[]>('v1/audit', { query: { after: options.after, limit } });
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify(body)}\n`);
      return;
    }
    const rows = body.map((r) => [String(r.seq), r.recordedAt, r.actor, r.action, r.subject, r.outcome, JSON.stringify(r.details)]);
    const more = nextPageHint(body, limit, (last) => String(last.seq));
    process.stdout.write(`${table(['SEQ', 'RECORDED', 'ACTOR', 'ACTION', 'SUBJECT', 'OUTCOME', 'DETAILS'], rows)}${body.length} record(s)${more}\n`);
  });
}
