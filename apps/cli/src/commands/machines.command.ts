import type { Machine } from '@rackseal/api-contracts';
import type { Command } from 'commander';
import { ServerClient, withServerOptions } from '../server-client';
import { table } from '../terminal-text';
import { nextPageHint, pageSize, pageSizeOption, textCursorOption } from './paging-options';

/**
 * `rackseal machines list` (docs/architecture.md §4.2, §5): the imported machines, ordered by serial and keyset-paged
 * (GET /v1/machines, scope `inventory:read`). A full page ends with the `--after` that reads the next.
 */
export function registerMachines(program: Command): void {
  const machines = program.command('machines').description('machines on the control plane (server commands)');
  withServerOptions(
    machines
      .command('list')
      .description('list machines ordered by serial; page with --after')
      .option('--group <group>', 'only machines of this group')
      .addOption(textCursorOption('serial', 'only serials after this one (the last serial of the previous page)'))
      .addOption(pageSizeOption('machines'))
      .option('--json', 'machine-readable output'),
  ).action(async (options: { group?: string; after?: string; limit?: number; json?: boolean }, command: Command) => {
    const limit = pageSize(options.limit);
    const { body } = await ServerClient.forCommand(command).get<Machine[]>('v1/machines', { query: { group: options.group, after: options.after, limit } });
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify(body)}\n`);
      return;
    }
    const rows = body.map((m) => [m.serial, m.hostname ?? '-', m.assetTag ?? '-', m.group ?? '-', m.state, m.ekPubHash.slice(0, 16), m.importedAt.slice(0, 10)]);
    // The serial goes back as one shell word: JSON quoting keeps spaces and quotes intact.
    const more = nextPageHint(body, limit, (last) => JSON.stringify(last.serial));
    process.stdout.write(`${table(['SERIAL', 'HOSTNAME', 'ASSET TAG', 'GROUP', 'STATE', 'EK PUB HASH', 'IMPORTED'], rows)}${body.length} machine(s)${more}\n`);
  });
}
