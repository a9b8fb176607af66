import {
  DISK_KEY_SIZES,
  MAX_OPAQUE_BYTES,
  SECRET_BINDINGS,
  SECRET_KEY_ALGORITHMS,
  SECRET_KINDS,
  type SecretParameters,
  type SecretVersionDetail,
  type SecretView,
  type VersionDeliveryProgress,
} from '@rackseal/api-contracts';
import { CliError, readInput } from '@rackseal/command-line';
import { type Command, Option } from 'commander';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, table, terminalJson } from '../terminal-text';
import { nextPageHint, pageSize, pageSizeOption, textCursorOption, wholeNumberArgument } from './paging-options';

const NAME_ARGUMENT = 'the secret\'s name';

/**
 * `rackseal secrets create|rotate|show|list|versions` (issue 13 item 3): secret definitions and
 * their versions, metadata only (scopes `secrets:write`, `secrets:read`). An opaque value is read
 * from a file or stdin (`--value-file -`), never from argv, and is sent base64 in the body.
 */
export function registerSecrets(program: Command): void {
  const secrets = program.command('secrets').description('secrets distributed to machines: TLS keys, disk keys, opaque values, kubelet client credentials (server commands)');

  withServerOptions(
    secrets
      .command('create')
      .description('create a secret (version 1): per-machine material for every attested machine of the target now, the others when they attest')
      .argument('<name>', NAME_ARGUMENT)
      .addOption(new Option('--kind <kind>', 'what the secret is').choices(SECRET_KINDS).makeOptionMandatory())
      .option('--group <group>', 'target: a machine group')
      .option('--machine <machine>', 'target: one machine, by id or serial')
      .addOption(new Option('--binding <binding>', 'how deliveries wrap it to the machine\'s TPM').choices(SECRET_BINDINGS).makeOptionMandatory())
      .option('--san <template...>', 'tls: a SAN template, e.g. "{hostname}.{group}.cluster.internal" (placeholders {hostname} {serial} {group} {machineId}); repeat for more')
      .option('--validity-days <n>', 'tls, kubelet-client: certificate validity (default 90)', wholeNumberArgument('--validity-days', 1, 825))
      .option('--renew-before-days <n>', 'tls, kubelet-client: renew this long before expiry (default min(30, validity/3))', wholeNumberArgument('--renew-before-days', 0, 824))
      .addOption(new Option('--key-algorithm <alg>', 'tls, kubelet-client: the machine\'s key pair (default ecdsa-p256)').choices(SECRET_KEY_ALGORITHMS))
      .option('--size <bytes>', `disk: ${DISK_KEY_SIZES.join(' or ')}; opaque: bytes to generate (default 32)`, wholeNumberArgument('--size', 1, MAX_OPAQUE_BYTES))
      .option('--api-server <url>', 'kubelet-client: the Kubernetes API server\'s https URL')
      .option('--cluster-name <name>', 'kubelet-client: the cluster\'s name in kubelet.conf (default kubernetes)')
      .option('--value-file <path>', 'opaque: the value, from this file or - for stdin (otherwise generated)')
      .option('--json', 'machine-readable output'),
  ).action(async (name: string, options: CreateOptions, command: Command) => {
    const client = ServerClient.forCommand(command);
    if ((options.group === undefined) === (options.machine === undefined)) {
      throw CliError.usage(`${client.action}: give exactly one target, --group or --machine`);
    }
    const parameters: Record<string, unknown> = {};
    const set = (key: keyof SecretParameters, value: unknown): void => {
      if (value !== undefined) {
        parameters[key] = value;
      }
    };
    set('sans', options.san);
    set('validityDays', options.validityDays);
    set('renewBeforeDays', options.renewBeforeDays);
    set('keyAlgorithm', options.keyAlgorithm);
    set('size', options.size);
    set('server', options.apiServer);
    set('clusterName', options.clusterName);
    const body = {
      name,
      kind: options.kind,
      target: options.group !== undefined ? { group: options.group } : { machine: options.machine },
      binding: options.binding,
      parameters,
      ...(options.valueFile === undefined ? {} : { value: readValue(options.valueFile) }),
    };
    const { body: answer } = await client.post<SecretView>('v1/secrets', body);
    process.stdout.write(options.json === true ? `${terminalJson(answer)}\n` : `created ${describeCreated(answer)}`);
  });

  withServerOptions(
    secrets
      .command('rotate')
      .description('make a new version of a secret (fresh material for every attested machine of its target) and wait until every target acked it')
      .argument('<name>', NAME_ARGUMENT)
      .option('--value-file <path>', 'opaque: the new value, from this file or - for stdin (otherwise generated)')
      .option('--group <group>', 'the group the secret must target (refused when it targets another group or one machine): a check that you rotate what you meant')
      .option('--no-wait', 'return once the version exists; do not wait for the machines to ack it')
      .option('--json', 'machine-readable output'),
  ).action(async (name: string, options: { valueFile?: string; group?: string; wait: boolean; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const body = { ...(options.valueFile === undefined ? {} : { value: readValue(options.valueFile) }), ...(options.group === undefined ? {} : { group: options.group }) };
    const segment = client.segment(name, NAME_ARGUMENT);
    const { body: answer } = await client.post<SecretView>(`v1/secrets/${segment}/versions`, body);
    if (!options.wait) {
      process.stdout.write(options.json === true ? `${terminalJson(answer)}\n` : `rotated ${describeCreated(answer)}`);
      return;
    }
    const progress = await waitForAcks(client, `v1/secrets/${segment}/versions/${answer.latestVersion.version}/deliveries`, new AckProgressBar(process.stderr));
    process.stdout.write(
      options.json === true
        ? `${terminalJson({ ...answer, progress })}\n`
        : `rotated ${describeCreated(answer)}${progress.states.acked}/${progress.total} target(s) acked${progress.states.failed > 0 ? `, ${progress.states.failed} failed` : ''}\n`,
    );
    if (progress.states.failed > 0) {
      throw CliError.invalid(`${client.action}: ${progress.states.failed} delivery(ies) of version ${progress.version} failed (GET /v1/deliveries?state=failed&secret=${name}; retry them with POST /v1/deliveries/:id/retry)`);
    }
  });

  withServerOptions(
    secrets.command('show').description('a secret\'s definition and latest version (never its material)').argument('<name>', NAME_ARGUMENT).option('--json', 'machine-readable output'),
  ).action(async (name: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<SecretView>(`v1/secrets/${client.segment(name, NAME_ARGUMENT)}`);
    process.stdout.write(options.json === true ? `${terminalJson(body)}\n` : describeSecret(body));
  });

  withServerOptions(
    secrets
      .command('list')
      .description('the secrets, by name')
      .addOption(textCursorOption('name', 'only names after this one (paging)'))
      .addOption(pageSizeOption('secrets'))
      .option('--json', 'machine-readable output'),
  ).action(async (options: { after?: string; limit?: number; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const limit = pageSize(options.limit);
    const { body } = await client.get<SecretView[]>('v1/secrets', { query: { after: options.after, limit } });
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    const rows = body.map((s) => [s.name, s.kind, targetOf(s), s.binding, String(s.latestVersion.version), String(s.latestVersion.machines), s.createdAt.slice(0, 10)].map(safe));
    process.stdout.write(`${table(['NAME', 'KIND', 'TARGET', 'BINDING', 'VERSION', 'MACHINES', 'CREATED'], rows)}${body.length} secret(s)${nextPageHint(body, limit, (s) => JSON.stringify(s.name))}\n`);
  });

  withServerOptions(
    secrets.command('versions').description('a secret\'s versions, newest first, with the machines holding material of each').argument('<name>', NAME_ARGUMENT).option('--json', 'machine-readable output'),
  ).action(async (name: string, options: { json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<SecretVersionDetail[]>(`v1/secrets/${client.segment(name, NAME_ARGUMENT)}/versions`);
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    let out = '';
    for (const v of body) {
      out += `version ${v.version}: created ${minute(v.createdAt)} by ${safe(v.createdBy)}, ${v.machines} machine(s)\n`;
      const rows = v.materials.map((m) => [m.serial, m.machineId, m.certificateSerial ?? '-', m.notAfter === null ? '-' : minute(m.notAfter)].map(safe));
      out += rows.length === 0 ? '' : table(['  SERIAL', 'MACHINE', 'CERT SERIAL', 'NOT AFTER'], rows.map((r) => [`  ${r[0]}`, ...r.slice(1)]));
    }
    process.stdout.write(out);
  });
}

interface CreateOptions {
  kind: string;
  group?: string;
  machine?: string;
  binding: string;
  san?: string[];
  validityDays?: number;
  renewBeforeDays?: number;
  keyAlgorithm?: string;
  size?: number;
  apiServer?: string;
  clusterName?: string;
  valueFile?: string;
  json?: boolean;
}

/** An opaque value from a file or stdin, base64 for the body; its size is the server's to check. */
function readValue(path: string): string {
  return readInput(path === '-' ? '/dev/stdin' : path, '--value-file', MAX_OPAQUE_BYTES).toString('base64');
}

function targetOf(s: SecretView): string {
  return s.target.group !== null ? `group ${s.target.group}` : `machine ${s.target.serial ?? s.target.machineId}`;
}

function describeCreated(s: SecretView): string {
  return `secret ${safe(s.name)} (${s.kind}, ${safe(targetOf(s))}): version ${s.latestVersion.version}, material for ${s.latestVersion.machines} machine(s)\n`;
}

function describeSecret(s: SecretView): string {
  const fields: [string, string][] = [
    ['name', s.name],
    ['id', s.id],
    ['kind', s.kind],
    ['target', targetOf(s)],
    ['binding', s.binding],
    ['parameters', JSON.stringify(s.parameters)],
    ['created', `${minute(s.createdAt)} by ${s.createdBy}`],
    ['version', `${s.latestVersion.version} (${minute(s.latestVersion.createdAt)} by ${s.latestVersion.createdBy}), ${s.latestVersion.machines} machine(s)`],
    ...(s.rotationRequired === null ? [] : ([['rotation required', `since ${minute(s.rotationRequired.since)}: ${s.rotationRequired.reason}`]] as [string, string][])),
  ];
  const width = Math.max(...fields.map(([n]) => n.length));
  return fields.map(([n, v]) => `${`${n}:`.padEnd(width + 2)}${safe(v)}\n`).join('');
}

/** How often the waiting form asks the server how far the version's deliveries are. */
const PROGRESS_POLL_MS = 1000;

/** Polls a version's rollout until nothing is pending or ready; draws each answer. */
async function waitForAcks(client: ServerClient, path: string, bar: AckProgressBar): Promise<VersionDeliveryProgress> {
  try {
    for (;;) {
      const { body } = await client.get<VersionDeliveryProgress>(path);
      bar.draw(body);
      if (body.settled) {
        return body;
      }
      await new Promise((resolve) => setTimeout(resolve, PROGRESS_POLL_MS));
    }
  } finally {
    bar.clear();
  }
}

/** `[#####-----]  3/10 acked, 1 failed` on stderr, redrawn in place; silent when stderr is not a terminal. */
class AckProgressBar {
  private drawn = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  draw(p: VersionDeliveryProgress): void {
    if (this.out.isTTY !== true) {
      return;
    }
    const done = p.states.acked + p.states.failed + p.states.cancelled + p.states.expired;
    const fraction = p.total === 0 ? 1 : done / p.total;
    const width = 30;
    const filled = Math.round(fraction * width);
    const failed = p.states.failed > 0 ? `, ${p.states.failed} failed` : '';
    this.out.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${p.states.acked}/${p.total} acked${failed}\x1b[K`);
    this.drawn = true;
  }

  clear(): void {
    if (this.drawn) {
      this.out.write('\r\x1b[K');
      this.drawn = false;
    }
  }
}

function minute(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')}Z`;
}
