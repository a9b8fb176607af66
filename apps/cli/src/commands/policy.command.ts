import {
  type GroupApprovals,
  type GroupAttestationInterval,
  type GroupAttestationIntervalRemoval,
  type GroupPolicy,
  type PolicyMode,
  POLICY_BODY_LIMIT_BYTES,
  POLICY_MODES,
  type PolicyPromotion,
  type PolicySetChange,
} from '@rackseal/api-contracts';
import { CliError, readInput } from '@rackseal/command-line';
import { type Command, Option } from 'commander';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, table, terminalJson } from '../terminal-text';
import { formatSeconds, intervalArgument } from './duration-option';
import { registerPolicyRuntime } from './policy-runtime.command';

const GROUP_ARGUMENT = 'the machine group';

/**
 * `rackseal policy set|show|promote|approve|withdraw|approvals` (issue 12 items 3 and 7, docs/architecture.md §4.3): a machine
 * group's PCR policy and attestation interval. `set --file` sends a policy JSON file as is (the
 * server validates it and names the field at fault; scope `policy:write`), `set --interval` the
 * group's attestation interval (PUT /v1/groups/:group/interval, `default` deletes it); `show` prints
 * the interval, then the mode, bank, PCRs and each allowed set with where it came from, values
 * abbreviated (scope `policy:read`; `--json` prints the policy answer with the interval beside it as
 * `attestationInterval`, and the policy's `policy` is what `set --file` takes); `promote` makes a
 * canary machine's latest verified values the set LABEL (scope `policy:write`); `approve` adds the
 * set LABEL from stated values (a state predicted before a rollout), `withdraw` removes the set LABEL
 * and so moves the group's approval epoch on (both `policy:write`); `approvals` prints
 * the group's signed PCR approvals: the signing key's Name, the epoch and policyRef, one line per
 * approved set (scope `policy:read`; `--json` the answer as is, signatures and public area included).
 */
export function registerPolicy(program: Command): void {
  const policy = program.command('policy').description('machine groups\' PCR policies (server commands)');
  withServerOptions(
    policy
      .command('set')
      .description('set (or replace) a group\'s PCR policy from a JSON file, and/or its attestation interval')
      .argument('<group>', GROUP_ARGUMENT)
      .option('--file <path>', 'the policy JSON: {"bank", "pcrs", "mode", "allowedSets": [{"label", "values", "promotedFrom"?}]}')
      .addOption(
        new Option('--interval <duration>', 'how often the group\'s machines must attest (10s to 31d, e.g. 15m, 1h, 1d), or "default" for the fleet\'s MACHINE_ATTESTATION_INTERVAL_MS').argParser(
          intervalArgument('--interval'),
        ),
      )
      .option('--json', 'machine-readable output'),
  ).action(async (group: string, options: { file?: string; interval?: number | 'default'; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    if (options.file === undefined && options.interval === undefined) {
      throw CliError.usage(`${client.action}: give --file (the PCR policy), --interval (the attestation interval) or both`);
    }
    const segment = client.segment(group, GROUP_ARGUMENT);
    const out: Record<string, unknown> = {};
    let text = '';
    if (options.file !== undefined) {
      const raw = readInput(options.file, '--file', POLICY_BODY_LIMIT_BYTES).toString('utf8');
      let body: unknown;
      try {
        body = JSON.parse(raw) as unknown;
      } catch (error) {
        throw CliError.usage(`${client.action}: --file ${safe(options.file)} is not JSON: ${safe((error as Error).message)}`);
      }
      // The interval below is its own request, audited on its own: the policy lands first.
      const { body: answer } = await client.put<GroupPolicy>(`v1/groups/${segment}/policy`, body);
      out.policy = answer;
      text += `set the PCR policy of group ${safe(answer.group)} (digest ${answer.digest})\n${describePolicy(answer)}`;
    }
    if (options.interval === 'default') {
      const { body: answer } = await client.delete<GroupAttestationIntervalRemoval>(`v1/groups/${segment}/interval`);
      out.attestationInterval = answer.interval;
      text += answer.changed
        ? `group ${safe(answer.interval.group)} now has the fleet default attestation interval, ${formatSeconds(answer.interval.attestationIntervalSeconds)}\n`
        : `group ${safe(answer.interval.group)} already had the fleet default attestation interval, ${formatSeconds(answer.interval.attestationIntervalSeconds)}: nothing changed\n`;
    } else if (options.interval !== undefined) {
      const { body: answer } = await client.put<GroupAttestationInterval>(`v1/groups/${segment}/interval`, { attestationIntervalSeconds: options.interval });
      out.attestationInterval = answer;
      text += `set the attestation interval of group ${safe(answer.group)} to ${formatSeconds(answer.attestationIntervalSeconds)}\n`;
    }
    // --json: the policy answer as before when only --file was given, else {policy?, attestationInterval}.
    process.stdout.write(options.json === true ? `${terminalJson(options.interval === undefined ? out.policy : out)}\n` : text);
  });

  withServerOptions(
    policy
      .command('show')
      .description('a group\'s attestation interval and PCR policy: mode, bank, PCRs and each allowed set with its origin')
      .argument('<group>', GROUP_ARGUMENT)
      .option('--json', 'machine-readable output (the whole policy, canary event logs included, and attestationInterval)'),
  ).action(async (group: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const segment = client.segment(group, GROUP_ARGUMENT);
    // The interval first: it answers for any group name, and a group without a policy still shows it below the refusal.
    const { body: interval } = await client.get<GroupAttestationInterval>(`v1/groups/${segment}/interval`);
    const intervalLine = `attestation interval: ${describeInterval(interval)}\n`;
    let body: GroupPolicy;
    try {
      ({ body } = await client.get<GroupPolicy>(`v1/groups/${segment}/policy`));
    } catch (error) {
      process.stderr.write(intervalLine);
      throw error;
    }
    process.stdout.write(options.json === true ? `${terminalJson({ ...body, attestationInterval: interval })}\n` : `${intervalLine}${describePolicy(body)}`);
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
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    const what = body.created ? 'created the policy with' : body.replaced ? 'replaced' : 'added';
    process.stdout.write(
      `promoted machine ${safe(body.machine.serial)} (${body.machine.id}) into group ${safe(body.policy.group)}: ${what} set "${safe(body.label)}" ` +
        `(values of registration ${body.registrationId}, verified ${minute(body.evidenceAt)})\n${describePolicy(body.policy)}`,
    );
  });

  withServerOptions(
    policy
      .command('approve')
      .description('approve one more PCR state of a group\'s policy from stated values: the set LABEL, signed in the current approval epoch')
      .argument('<group>', GROUP_ARGUMENT)
      .requiredOption('--label <label>', 'the set\'s label (a set with this label is replaced)')
      .requiredOption('--values <file>', 'JSON object of PCR index to hex digest, exactly the policy\'s PCRs, e.g. {"4": "ab…", "7": "cd…"} (- for stdin)')
      .option('--json', 'machine-readable output'),
  ).action(async (group: string, options: { label: string; values: string; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const raw = readInput(options.values, '--values', POLICY_BODY_LIMIT_BYTES).toString('utf8');
    let values: unknown;
    try {
      values = JSON.parse(raw) as unknown;
    } catch (error) {
      throw CliError.usage(`${client.action}: --values ${safe(options.values)} is not JSON: ${safe((error as Error).message)}`);
    }
    const { body } = await client.post<PolicySetChange>(`v1/groups/${client.segment(group, GROUP_ARGUMENT)}/policy/sets`, { label: options.label, values });
    printSetChange(body, `${body.replaced ? 'replaced' : 'approved'} set "${safe(body.label)}"`, options.json);
  });

  withServerOptions(
    policy
      .command('withdraw')
      .description('withdraw the set LABEL from a group\'s policy: its approval is no longer served and the approval epoch moves on (envelopes sealed to the older epoch are re-wrapped)')
      .argument('<group>', GROUP_ARGUMENT)
      .requiredOption('--label <label>', 'the set to withdraw')
      .option('--json', 'machine-readable output'),
  ).action(async (group: string, options: { label: string; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.delete<PolicySetChange>(`v1/groups/${client.segment(group, GROUP_ARGUMENT)}/policy/sets/${client.segment(options.label, 'the label')}`);
    printSetChange(body, `withdrew set "${safe(body.label)}"`, options.json);
  });

  withServerOptions(
    policy
      .command('approvals')
      .description('a group\'s signed PCR approvals: the signing key, the approval epoch and one approval per allowed set')
      .argument('<group>', GROUP_ARGUMENT)
      .option('--json', 'machine-readable output (the whole answer: signatures, the signing key\'s TPM2B_PUBLIC)'),
  ).action(async (group: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<GroupApprovals>(`v1/groups/${client.segment(group, GROUP_ARGUMENT)}/approvals`);
    process.stdout.write(options.json === true ? `${terminalJson(body)}\n` : describeApprovals(body));
  });

  registerPolicyRuntime(policy);
}

/** The human view of a group's approvals: key, epoch, selection, then one row per approved set. */
function describeApprovals(a: GroupApprovals): string {
  const fields: [string, string][] = [
    ['group', a.group],
    ['epoch', String(a.epoch)],
    ['policyRef', a.policyRef],
    ['signing key', a.signingKeyName],
    ['selection', a.pcrs.length === 0 ? '(no policy)' : `${a.bank}:${a.pcrs.join(',')}`],
  ];
  const width = Math.max(...fields.map(([name]) => name.length));
  let out = fields.map(([name, value]) => `${`${name}:`.padEnd(width + 2)}${safe(value)}\n`).join('');
  out += `\napprovals (${a.approvals.length}):\n`;
  if (a.approvals.length > 0) {
    const rows = table(['LABEL', 'APPROVED POLICY', 'SIGNED'], a.approvals.map((x) => [x.label, x.approvedPolicy, minute(x.signedAt)]));
    out += rows.split('\n').filter((line) => line !== '').map((line) => `  ${line}\n`).join('');
  }
  return out;
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

/** `15m (the group's own, set 2026-12-02 19:40Z by token:…)` or `1d (the fleet default)`. */
function describeInterval(i: GroupAttestationInterval): string {
  return i.source === 'group'
    ? `${formatSeconds(i.attestationIntervalSeconds)} (the group's own, set ${minute(i.updatedAt ?? '')} by ${safe(i.updatedBy ?? '')}; fleet default ${formatSeconds(i.fleetDefaultSeconds)})`
    : `${formatSeconds(i.attestationIntervalSeconds)} (the fleet default, MACHINE_ATTESTATION_INTERVAL_MS)`;
}

/** `3d458cfe…e2ad`: enough to tell values apart on a terminal; `--json` has them whole. */
function abbreviated(hex: string): string {
  return hex.length <= 16 ? hex : `${hex.slice(0, 8)}…${hex.slice(-4)}`;
}

function minute(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')}Z`;
}

function printSetChange(change: PolicySetChange, what: string, json: boolean | undefined): void {
  process.stdout.write(
    json === true ? `${terminalJson(change)}\n` : `${what} in group ${safe(change.policy.group)} (approval epoch ${change.approvalEpoch})\n${describePolicy(change.policy)}`,
  );
}
