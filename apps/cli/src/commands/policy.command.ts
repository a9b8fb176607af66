import { type GroupPolicy, type PolicyMode, POLICY_BODY_LIMIT_BYTES, POLICY_MODES, type PolicyPromotion } from '@rackseal/api-contracts';
import { CliError, readInput } from '@rackseal/command-line';
import { type Command, Option } from 'commander';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, table } from '../terminal-text';

const GROUP_ARGUMENT = 'the machine group';

/**
 * `rackseal policy set|show|promote` (issue 12 item 3, docs/architecture.md §4.3): a machine group's
 * PCR policy. `set` sends a policy JSON file as is (the server validates it and names the field at
 * fault; scope `policy:write`); `show` prints the mode, bank, PCRs and each allowed set with where it
 * came from, values abbreviated (scope `policy:read`; `--json` prints the whole answer, whose
 * `policy` is what `set --file` takes); `promote` makes a canary machine's latest verified values
 * the set LABEL (scope `policy:write`).
 */
export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('machine groups\' PCR policies (server commands)');
  withServerOptions(
    policy
      .command('set')
      .description('set (or replace) a group\'s PCR policy from a JSON file')
      .argument('<group>', GROUP_ARGUMENT)
      .requiredOption('--file <path>', 'the policy JSON: {"bank", "pcrs", "mode", "allowedSets": [{"label", "values", "promotedFrom"?}]}')
      .option('--json', 'machine-readable output'),
  ).action(async (group: string, options: { file: string; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const text = readInput(options.file, '--file', POLICY_BODY_LIMIT_BYTES).toString('utf8');
    let body: unknown;
    try {
      body = JSON.parse(text) as unknown;
    } catch (error) {
      throw CliError.usage(`${client.action}: --file ${safe(options.file)} is not JSON: ${(error as Error).message}`);
    }
    const { body: answer } = await client.put<GroupPolicy>(`v1/groups/${client.segment(group, GROUP_ARGUMENT)}/policy`, body);
    process.stdout.write(options.json === true ? `${JSON.stringify(answer)}\n` : `set the PCR policy of group ${safe(answer.group)} (digest ${answer.digest})\n${describePolicy(answer)}`);
  });

  withServerOptions(
    policy
      .command('show')
      .description('a group\'s PCR policy: mode, bank, PCRs and each allowed set with its origin')
      .argument('<group>', GROUP_ARGUMENT)
      .option('--json', 'machine-readable output (the whole policy, canary event logs included)'),
  ).action(async (group: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<GroupPolicy>(`v1/groups/${client.segment(group, GROUP_ARGUMENT)}/policy`);
    process.stdout.write(options.json === true ? `${JSON.stringify(body)}\n` : describePolicy(body));
  });

  withServerOptions(
    policy
      .command('promote')
      .description('make a canary machine\'s latest verified PCR values (and event log) the allowed set LABEL of its group\'s policy')
      .argument('<group>', GROUP_ARGUMENT)
      .requiredOption('--machine <machine>', 'the canary: machine id (UUID) or serial')
      .requiredOption('--label <label>', 'the set\'s label (a set with this label is replaced)')
      .addOption(new Option('--mode <mode>', 'for a group without a policy (default enforce)').choices(POLICY_MODES))
      .option('--json', 'machine-readable output'),
  ).action(async (group: string, options: { machine: string; label: string; mode?: PolicyMode; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const request = { machine: options.machine, label: options.label, ...(options.mode === undefined ? {} : { mode: options.mode }) };
    const { body } = await client.post<PolicyPromotion>(`v1/groups/${client.segment(group, GROUP_ARGUMENT)}/policy/promote`, request);
    if (options.json === true) {
      process.stdout.write(`${JSON.stringify(body)}\n`);
      return;
    }
    const what = body.created ? 'created the policy with' : body.replaced ? 'replaced' : 'added';
    process.stdout.write(
      `promoted machine ${safe(body.machine.serial)} (${body.machine.id}) into group ${safe(body.policy.group)}: ${what} set "${safe(body.label)}" ` +
        `(values of registration ${body.registrationId}, verified ${minute(body.evidenceAt)})\n${describePolicy(body.policy)}`,
    );
  });
}

/** The human view: the policy's fields, then each set with its origin and its values abbreviated. */
function describePolicy(p: GroupPolicy): string {
  const fields: [string, string][] = [
    ['group', p.group],
    ['mode', p.policy.mode === 'enforce' ? 'enforce (a mismatch quarantines)' : 'warn (a mismatch is recorded, the machine stays attested)'],
    ['bank', p.policy.bank],
    ['PCRs', p.policy.pcrs.join(',')],
    ['digest', p.digest],
    ['updated', `${minute(p.updatedAt)} by ${p.updatedBy}`],
  ];
  const width = Math.max(...fields.map(([name]) => name.length));
  let out = fields.map(([name, value]) => `${`${name}:`.padEnd(width + 2)}${safe(value)}\n`).join('');
  out += `\nallowed sets (${p.policy.allowedSets.length}):\n`;
  for (const set of p.policy.allowedSets) {
    const origin = set.promotedFrom;
    const from =
      origin === undefined
        ? 'set by hand'
        : `promoted from ${origin.machine} at ${minute(origin.at)}${origin.eventLog === undefined ? ', no event log' : `, event log ${Buffer.from(origin.eventLog, 'base64').length} bytes`}`;
    out += `  ${safe(set.label)}: ${safe(from)}\n`;
    const rows = table(['PCR', 'VALUE'], p.policy.pcrs.map((pcr) => [String(pcr), abbreviated(set.values[String(pcr)] ?? '-')]));
    out += rows.split('\n').filter((line) => line !== '').map((line) => `    ${line}\n`).join('');
  }
  return out;
}

/** `3d458cfe…e2ad`: enough to tell values apart on a terminal; `--json` has them whole. */
function abbreviated(hex: string): string {
  return hex.length <= 16 ? hex : `${hex.slice(0, 8)}…${hex.slice(-4)}`;
}

function minute(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')}Z`;
}
