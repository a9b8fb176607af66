import { type CertifiedKey, type Machine, type MachineDetail, type MachineReattestRequest, type MachineRevocation, MACHINE_STATES, type MachineState } from '@rackseal/api-contracts';
import { writeFileSync } from 'node:fs';
import { CliError } from '@rackseal/command-line';
import type { MachinePrewraps } from '@rackseal/node-api-contracts';
import { type Command, Option } from 'commander';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, table, terminalJson } from '../terminal-text';
import { nextPageHint, pageSize, pageSizeOption, textCursorOption } from './paging-options';
import { instantArgument } from './since-option';

const REF_ARGUMENT = 'the machine id (UUID) or its serial';

/**
 * `rackseal machines list|show|keys|revoke|reattest|prewrapped` (docs/architecture.md §3, §4.8, §5): the machines and their
 * lifecycle. `list` is ordered by serial and keyset-paged (GET /v1/machines, scope `inventory:read`;
 * a full page ends with the `--after` that reads the next), filtered by state, group, "not
 * attested since" or overdue against the group's attestation interval (the fleet liveness checks); `show` prints one machine with its attestation times,
 * its live certified key, its last failure explained and its history; `keys` lists its certified keys
 * (GET /v1/machines/:ref/keys, the live one and the retired ones, newest first); `revoke` revokes it (scope `inventory:write`;
 * revoking a revoked machine changes nothing and still exits 0); `reattest` asks it to attest again
 * now (POST /v1/machines/:ref/reattest; a repeat while one is pending keeps the first); `prewrapped`
 * writes a pre-wrapped disk key's provisioning file (GET /v1/machines/:ref/prewrapped, scope `secrets:write`).
 */
export function registerMachines(program: Command): void {
  const machines = program.command('machines').description('machines on the control plane (server commands)');
  withServerOptions(
    machines
      .command('list')
      .description('list machines ordered by serial; page with --after')
      .addOption(new Option('--state <state>', 'only machines in this state').choices(MACHINE_STATES))
      .option('--group <group>', 'only machines of this group')
      .addOption(
        new Option('--not-attested-since <when>', 'only machines (not revoked) never attested or last attested before WHEN: a date-time (2026-03-01T10:00:00Z) or a duration back from now (24h, 7d)').argParser(
          instantArgument('--not-attested-since'),
        ),
      )
      .option('--overdue', 'only machines (not revoked) never attested or not within their group\'s attestation interval (policy set --interval; the fleet default without one)')
      .addOption(textCursorOption('serial', 'only serials after this one (the last serial of the previous page)'))
      .addOption(pageSizeOption('machines'))
      .option('--json', 'machine-readable output'),
  ).action(async (options: { state?: MachineState; group?: string; notAttestedSince?: string; overdue?: boolean; after?: string; limit?: number; json?: boolean }, command: Command) => {
    const limit = pageSize(options.limit);
    const overdue = options.overdue === true ? 'true' : undefined;
    const query = { state: options.state, group: options.group, notAttestedSince: options.notAttestedSince, overdue, after: options.after, limit };
    const { body } = await ServerClient.forCommand(command).get<Machine[]>('v1/machines', { query });
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    const rows = body.map((m) => [m.serial, m.hostname ?? '-', m.assetTag ?? '-', m.group ?? '-', m.state, m.lastAttestedAt === null ? 'never' : minute(m.lastAttestedAt), m.ekPubHash.slice(0, 16), m.importedAt.slice(0, 10)]);
    // The serial goes back as one shell word: JSON quoting keeps spaces and quotes intact.
    const more = nextPageHint(body, limit, (last) => JSON.stringify(last.serial));
    process.stdout.write(`${table(['SERIAL', 'HOSTNAME', 'ASSET TAG', 'GROUP', 'STATE', 'LAST ATTESTED', 'EK PUB HASH', 'IMPORTED'], rows)}${body.length} machine(s)${more}\n`);
  });

  withServerOptions(
    machines
      .command('show')
      .description('one machine: its state, attestation times, last failure with its explanation, and history')
      .argument('<machine>', REF_ARGUMENT)
      .option('--json', 'machine-readable output'),
  ).action(async (ref: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<MachineDetail>(`v1/machines/${client.segment(ref, REF_ARGUMENT)}`);
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    // By the id the first answer gave, so both answers are about the same machine however it was named.
    const keys = await client.get<CertifiedKey[]>(`v1/machines/${body.id}/keys`);
    process.stdout.write(describeMachine(body, keys.body.find((k) => k.retiredAt === null)));
  });

  withServerOptions(
    machines
      .command('keys')
      .description("a machine's certified TPM keys (TPM2_Certify by its AK): the live one and the retired ones, newest first")
      .argument('<machine>', REF_ARGUMENT)
      .option('--json', 'machine-readable output'),
  ).action(async (ref: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<CertifiedKey[]>(`v1/machines/${client.segment(ref, REF_ARGUMENT)}/keys`);
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    const rows = body.map((k) => [k.id, k.algorithm, k.name, minute(k.certifiedAt), k.retiredAt === null ? 'live' : `retired ${minute(k.retiredAt)} (${k.retiredReason ?? '-'})`]);
    process.stdout.write(`${table(['KEY ID', 'ALGORITHM', 'NAME', 'CERTIFIED', 'STATUS'], rows)}${body.length} key(s)\n`);
  });

  withServerOptions(
    machines
      .command('revoke')
      .description('revoke a machine: final, it never attests again (revoking a revoked machine changes nothing)')
      .argument('<machine>', REF_ARGUMENT)
      .requiredOption('--reason <text>', 'why, kept in the machine\'s history and the audit log (1-1000 characters)')
      .option('--json', 'machine-readable output'),
  ).action(async (ref: string, options: { reason: string; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    if (options.reason.trim() === '') {
      throw CliError.usage(`${client.action}: --reason must not be empty: say why the machine is revoked`);
    }
    const { body } = await client.post<MachineRevocation>(`v1/machines/${client.segment(ref, REF_ARGUMENT)}/revoke`, { reason: options.reason });
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    const m = body.machine;
    const revocation = [...m.history].reverse().find((t) => t.to === 'revoked');
    process.stdout.write(
      body.changed
        ? `revoked machine ${safe(m.serial)} (${m.id}), was ${revocation?.from ?? 'unknown'}\n`
        : `machine ${safe(m.serial)} (${m.id}) was already revoked${revocation === undefined ? '' : ` on ${minute(revocation.at)} by ${safe(revocation.actor)}`}; nothing changed\n`,
    );
  });

  withServerOptions(
    machines
      .command('prewrapped')
      .description("a machine's disk keys pre-wrapped at import to its EK (issue 14 item 6): the provisioning file rackseal-agent unlock --prewrapped formats its new disk from at first boot")
      .argument('<machine>', REF_ARGUMENT)
      .option('--secret <name>', 'the disk secret to export (required when several are pre-wrapped)')
      .option('--out <file>', 'write the provisioning file here (mode 0600, never over an existing file) instead of stdout'),
  ).action(async (ref: string, options: { secret?: string; out?: string }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<MachinePrewraps>(`v1/machines/${client.segment(ref, REF_ARGUMENT)}/prewrapped`);
    const chosen = options.secret === undefined ? body.prewraps : body.prewraps.filter((p) => p.secret === options.secret);
    if (chosen.length !== 1) {
      const names = body.prewraps.map((p) => safe(p.secret)).join(', ');
      throw CliError.invalid(`${client.action}: ${options.secret === undefined ? `machine ${safe(body.machine.serial)} has ${chosen.length} pre-wrapped disk keys (${names}): name one with --secret` : `machine ${safe(body.machine.serial)} has no pre-wrapped key of ${safe(options.secret)} (it has: ${names || 'none'})`}`);
    }
    const file = `${terminalJson(chosen[0])}\n`;
    if (options.out === undefined) {
      process.stdout.write(file);
      return;
    }
    try {
      // Not a secret in clear, but the machine's own: 0600, and never over a file already there.
      writeFileSync(options.out, file, { mode: 0o600, flag: 'wx' });
    } catch (error) {
      throw CliError.usage(`${client.action}: cannot write ${JSON.stringify(options.out)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
    process.stderr.write(`wrote the pre-wrapped ${safe(chosen[0]!.secret)} v${chosen[0]!.version} of machine ${safe(body.machine.serial)} to ${safe(options.out)}\n`);
  });

  withServerOptions(
    machines
      .command('reattest')
      .description('ask a machine to attest again now rather than when its interval runs out (its agent sees it at its next question)')
      .argument('<machine>', REF_ARGUMENT)
      .option('--json', 'machine-readable output'),
  ).action(async (ref: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.post<MachineReattestRequest>(`v1/machines/${client.segment(ref, REF_ARGUMENT)}/reattest`, {});
    process.stdout.write(
      options.json === true ? `${terminalJson(body)}\n` : `asked machine ${safe(body.serial)} (${body.machineId}) to attest again (requested ${minute(body.requestedAt)})\n`,
    );
  });
}

/** The human view of `machines show`: fields (with the live certified key), then the last failure's explanation lines, then the history. */
function describeMachine(m: MachineDetail, liveKey: CertifiedKey | undefined): string {
  const fields: [string, string][] = [
    ['id', m.id],
    ['serial', m.serial],
    ['hostname', m.hostname ?? '-'],
    ['asset tag', m.assetTag ?? '-'],
    ['group', m.group ?? '-'],
    ['state', m.state],
    ['EK pub hash', m.ekPubHash],
    ['EK cert', m.ekCertFingerprint ?? '- (imported by ek_pub_hash)'],
    ['imported', `${minute(m.importedAt)}${m.importId === null ? '' : ` (import ${m.importId})`}`],
    ['first attested', m.firstAttestedAt === null ? 'never' : minute(m.firstAttestedAt)],
    ['last attested', m.lastAttestedAt === null ? 'never' : minute(m.lastAttestedAt)],
    ['certified key', liveKey === undefined ? 'none' : `${liveKey.algorithm} ${liveKey.name} (certified ${minute(liveKey.certifiedAt)}, key ${liveKey.id})`],
  ];
  const failure = m.lastFailure;
  if (failure !== null) {
    fields.push(['last failure', `${minute(failure.at)} ${failure.code}: ${failure.reason}${failure.registrationId === undefined ? '' : ` (registration ${failure.registrationId})`}`]);
  }
  const width = Math.max(...fields.map(([name]) => name.length));
  let out = fields.map(([name, value]) => `${`${name}:`.padEnd(width + 2)}${safe(value)}\n`).join('');
  if (failure !== null && failure.explanation.length > 0) {
    out += `\nwhy it failed:\n${failure.explanation.map((line) => `  ${safe(line)}\n`).join('')}`;
  }
  out += m.history.length === 0 ? '\nhistory: no state changes since the import\n' : `\nhistory:\n${table(['AT', 'FROM', 'TO', 'BY', 'REASON'], m.history.map((t) => [minute(t.at), t.from, t.to, t.actor, t.reason]))}`;
  return out;
}

function minute(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')}Z`;
}
