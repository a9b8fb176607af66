import { DELIVERY_STATES, type DeliveryState, type DeliveryView } from '@rackseal/api-contracts';
import { type Command, Option } from 'commander';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, table, terminalJson } from '../terminal-text';
import { nextPageHint, pageSize, pageSizeOption, textCursorOption } from './paging-options';

/**
 * `rackseal deliveries list|retry` (issue 14 item 1): the deliveries of secret versions to machines
 * and their states — never material or envelopes. `list` is ordered by delivery id and keyset-paged
 * (GET /v1/deliveries, scope `secrets:read`; a full page ends with the `--after` that reads the
 * next), filtered by state, machine (id or serial) and secret name; `--state failed` is the dead
 * letter. `retry` makes a failed delivery pending again in a new round (POST
 * /v1/deliveries/:id/retry, scope `secrets:write`).
 */
export function registerDeliveries(program: Command): void {
  const deliveries = program.command('deliveries').description('deliveries of secret versions to machines: states, the failed ones, retry (server commands)');

  withServerOptions(
    deliveries
      .command('list')
      .description('list deliveries ordered by id; page with --after')
      .addOption(new Option('--state <state>', 'only deliveries in this state (failed: the dead letter)').choices(DELIVERY_STATES))
      .option('--machine <machine>', 'only deliveries to this machine, by id or serial')
      .option('--secret <name>', 'only deliveries of this secret')
      .addOption(textCursorOption('id', 'only deliveries after this id (the last id of the previous page)'))
      .addOption(pageSizeOption('deliveries'))
      .option('--json', 'machine-readable output'),
  ).action(async (options: { state?: DeliveryState; machine?: string; secret?: string; after?: string; limit?: number; json?: boolean }, command: Command) => {
    const limit = pageSize(options.limit);
    const query = { state: options.state, machine: options.machine, secret: options.secret, after: options.after, limit };
    const { body } = await ServerClient.forCommand(command).get<DeliveryView[]>('v1/deliveries', { query });
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    const rows = body.map((d) =>
      [d.id, `${d.secret.name}@${d.secret.version}`, d.secret.kind, d.machine.serial, d.binding, d.state, String(d.attempts), d.lastError ?? '-', minute(d.ackedAt ?? d.readyAt ?? d.createdAt)].map(safe),
    );
    process.stdout.write(`${table(['ID', 'SECRET', 'KIND', 'MACHINE', 'BINDING', 'STATE', 'ATTEMPTS', 'LAST ERROR', 'SINCE'], rows)}${body.length} deliveries${nextPageHint(body, limit, (last) => last.id)}\n`);
  });

  withServerOptions(
    deliveries
      .command('retry')
      .description('make a failed delivery pending again (a new round: a worker seals it anew)')
      .argument('<id>', 'the delivery\'s id')
      .option('--json', 'machine-readable output'),
  ).action(async (id: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.post<DeliveryView>(`v1/deliveries/${client.segment(id, 'the delivery\'s id')}/retry`, {});
    process.stdout.write(
      options.json === true
        ? `${terminalJson(body)}\n`
        : `delivery ${safe(body.id)} of ${safe(body.secret.name)}@${body.secret.version} to ${safe(body.machine.serial)}: ${body.state} (round ${body.generation})\n`,
    );
  });
}

function minute(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')}Z`;
}
