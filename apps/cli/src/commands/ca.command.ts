import { writeFileSync } from 'node:fs';
import { CLUSTER_CA_KINDS, type ClusterCaView, MAX_CA_PEM_CHARS } from '@rackseal/api-contracts';
import { CliError, readInput } from '@rackseal/command-line';
import { type Command, Option } from 'commander';
import { ServerClient, withServerOptions } from '../server-client';
import { safe, terminalJson } from '../terminal-text';

const kindOption = (): Option => new Option('--kind <kind>', 'the cluster CA').choices(CLUSTER_CA_KINDS).makeOptionMandatory();

/**
 * `rackseal ca import|show|download` (issue 13 item 4): the cluster CAs secrets are issued from.
 * The key of an import is read from a file or stdin (`-`), never from argv; it is sent once in the
 * body, over the connection to the server (which should be TLS, README "First steps").
 */
export function registerCa(program: Command): void {
  const ca = program.command('ca').description('the cluster CAs: tls (created on first use or imported), kubernetes (imported) (server commands)');

  withServerOptions(
    ca
      .command('import')
      .description('import a CA certificate and its private key (refused when the kind has a CA)')
      .addOption(kindOption())
      .argument('<cert>', 'the CA certificate, PEM file')
      .argument('<key>', 'its private key, PEM file, or - for stdin')
      .option('--json', 'machine-readable output'),
  ).action(async (cert: string, key: string, options: { kind: string; json?: boolean }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const certificate = readInput(cert, 'the certificate', MAX_CA_PEM_CHARS).toString('utf8');
    const privateKey = readInput(key === '-' ? '/dev/stdin' : key, 'the private key', MAX_CA_PEM_CHARS).toString('utf8');
    const { body } = await client.post<ClusterCaView>(`v1/cas/${client.segment(options.kind, 'a CA kind')}`, { certificate, privateKey });
    process.stdout.write(options.json === true ? `${terminalJson(body)}\n` : `imported the ${body.kind} CA ${safe(body.subject)} (SHA-256 ${body.fingerprint})\n`);
  });

  withServerOptions(ca.command('show').description('a cluster CA: subject, fingerprint, validity').addOption(kindOption()).option('--json', 'machine-readable output')).action(
    async (options: { kind: string; json?: boolean }, command: Command) => {
      const client = ServerClient.forCommand(command);
      const { body } = await client.get<ClusterCaView>(`v1/cas/${client.segment(options.kind, 'a CA kind')}`);
      if (options.json === true) {
        process.stdout.write(`${terminalJson(body)}\n`);
        return;
      }
      const fields: [string, string][] = [
        ['kind', body.kind],
        ['origin', body.origin],
        ['subject', body.subject],
        ['fingerprint', body.fingerprint],
        ['key', body.keyAlgorithm],
        ['valid', `${body.notBefore} to ${body.notAfter}`],
        ['since', `${body.createdAt} by ${body.createdBy}`],
      ];
      process.stdout.write(fields.map(([n, v]) => `${`${n}:`.padEnd(13)}${safe(v)}\n`).join(''));
    },
  );

  withServerOptions(
    ca.command('download').description('the CA certificate, PEM, to stdout or --out FILE').addOption(kindOption()).option('--out <file>', 'write it here (mode 0644) instead of stdout'),
  ).action(async (options: { kind: string; out?: string }, command: Command) => {
    const client = ServerClient.forCommand(command);
    const { body } = await client.get<ClusterCaView>(`v1/cas/${client.segment(options.kind, 'a CA kind')}`);
    if (options.out === undefined) {
      process.stdout.write(body.certificate);
      return;
    }
    try {
      writeFileSync(options.out, body.certificate, { mode: 0o644 });
    } catch (error) {
      throw CliError.usage(`${client.action}: cannot write ${JSON.stringify(options.out)}: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
    }
  });
}
