import { type GroupRuntimePolicy, type PolicyMode, POLICY_MODES, RUNTIME_POLICY_BODY_LIMIT_BYTES, type RuntimePolicyRemoval } from '@rackseal/api-contracts';
import { CliError, readInput } from '@rackseal/command-line';
import { type Command, Option } from 'commander';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, terminalJson } from '../terminal-text';

const GROUP_ARGUMENT = 'the machine group';

/**
 * `rackseal policy runtime set|show|remove` (issue 17): a machine group's runtime policy, the Keylime
 * runtime policy (`keylime-policy create runtime` writes one) every re-attestation's IMA list is
 * judged by. `set --file FILE|-` sends the document as is (the server validates it and names the
 * field at fault); `set --from-machine REF` makes the canary's measurements verified this boot the
 * allowlist, with `--exclude` patterns added; both `policy:write`, `--mode` enforce (default) or
 * warn. `show` prints the mode, SHA-256 and size (`--json`: the answer, the document as `policy`,
 * which `set --file` takes back); `policy:read`.
 */
export function registerPolicyRuntime(policy: Command): void {
  const runtime = policy.command('runtime').description('machine groups\' runtime policies: the IMA allowlist (Keylime format) each re-attestation is checked against (server commands)');
  withServerOptions(
    runtime
      .command('set')
      .description('set (or replace) a group\'s runtime policy from a Keylime runtime-policy JSON file, or from a canary machine\'s verified measurements')
      .argument('<group>', GROUP_ARGUMENT)
      .option('--file <path>', 'the Keylime runtime policy JSON (keylime-policy create runtime), - for stdin')
      .option('--from-machine <machine>', 'the canary (machine id or serial, of the group): its IMA measurements verified this boot become the allowlist')
      .option('--exclude <pattern...>', 'with --from-machine: Keylime excludes to add (Python regular expressions), e.g. "/tmp/.*"')
      .addOption(new Option('--mode <mode>', 'enforce (default): a failing list quarantines the machine; warn: it is recorded').choices(POLICY_MODES))
      .option('--json', 'machine-readable output'),
  ).action(async (group: string, options: { file?: string; fromMachine?: string; exclude?: string[]; mode?: PolicyMode; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    if ((options.file === undefined) === (options.fromMachine === undefined)) {
      throw CliError.usage(`${client.action}: give --file (a Keylime runtime policy) or --from-machine (a canary), not both`);
    }
    if (options.exclude !== undefined && options.fromMachine === undefined) {
      throw CliError.usage(`${client.action}: --exclude goes with --from-machine (a policy file carries its own excludes)`);
    }
    const segment = client.segment(group, GROUP_ARGUMENT);
    const mode = options.mode === undefined ? {} : { mode: options.mode };
    let answer: GroupRuntimePolicy;
    if (options.file !== undefined) {
      const raw = readInput(options.file, '--file', RUNTIME_POLICY_BODY_LIMIT_BYTES).toString('utf8');
      let document: unknown;
      try {
        document = JSON.parse(raw) as unknown;
      } catch (error) {
        throw CliError.usage(`${client.action}: --file ${safe(options.file)} is not JSON: ${safe((error as Error).message)}`);
      }
      ({ body: answer } = await client.put<GroupRuntimePolicy>(`v1/groups/${segment}/runtime-policy`, { policy: document, ...mode }));
    } else {
      ({ body: answer } = await client.post<GroupRuntimePolicy>(`v1/groups/${segment}/runtime-policy/from-machine`, {
        machine: options.fromMachine,
        ...mode,
        ...(options.exclude === undefined ? {} : { excludes: options.exclude }),
      }));
    }
    process.stdout.write(
      options.json === true
        ? `${terminalJson(answer)}\n`
        : `set the runtime policy of group ${safe(answer.group)}${options.fromMachine === undefined ? '' : ` from machine ${safe(options.fromMachine)}`} (sha256 ${answer.sha256})\n${describe(answer)}`,
    );
  });

  withServerOptions(
    runtime
      .command('show')
      .description('a group\'s runtime policy: mode, SHA-256, files allowed and exclude patterns')
      .argument('<group>', GROUP_ARGUMENT)
      .option('--json', 'machine-readable output (the whole answer, the Keylime document as `policy`)'),
  ).action(async (group: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<GroupRuntimePolicy>(`v1/groups/${client.segment(group, GROUP_ARGUMENT)}/runtime-policy`);
    process.stdout.write(options.json === true ? `${terminalJson(body)}\n` : describe(body));
  });

  withServerOptions(
    runtime
      .command('remove')
      .description('remove a group\'s runtime policy: its machines no longer quote PCR 10 nor send their IMA list')
      .argument('<group>', GROUP_ARGUMENT)
      .option('--json', 'machine-readable output'),
  ).action(async (group: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.delete<RuntimePolicyRemoval>(`v1/groups/${client.segment(group, GROUP_ARGUMENT)}/runtime-policy`);
    process.stdout.write(options.json === true ? `${terminalJson(body)}\n` : `removed the runtime policy of group ${safe(body.group)}\n`);
  });
}

function describe(p: GroupRuntimePolicy): string {
  const fields: [string, string][] = [
    ['group', p.group],
    ['mode', p.mode === 'enforce' ? 'enforce (a failing IMA list quarantines)' : 'warn (a failing IMA list is recorded, the machine stays attested)'],
    ['sha256', p.sha256],
    ['files', String(p.paths)],
    ['excludes', String(p.excludes)],
    ['updated', `${p.updatedAt.slice(0, 16).replace('T', ' ')}Z by ${p.updatedBy}`],
  ];
  const width = Math.max(...fields.map(([name]) => name.length));
  return fields.map(([name, value]) => `${`${name}:`.padEnd(width + 2)}${safe(value)}\n`).join('');
}
