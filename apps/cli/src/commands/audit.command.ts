import type { AuditRecordView, AuditVerification } from '@rackseal/api-contracts';
import type { Command } from 'commander';
import { CliError, EXIT } from '@rackseal/command-line';
import { withDatabase } from '../database';
import { commandPath, ServerClient, withServerOptions } from '../server-client';
import { safe, table, terminalJson } from '../terminal-text';
import { registerAuditCheckpoint } from './audit-checkpoint.command';
import { readSavedCheckpoint } from './audit-note-files';
import { registerAuditProve } from './audit-prove.command';
import { AuditTrustError, checkExtends, KEY_OPTION_HELP, openTrusted, readKeyOption, trustedKeys } from './audit-trust';
import { explicitServer, explicitServerOption } from './explicit-server';
import { idCursorOption, nextPageHint, pageSize, pageSizeOption } from './paging-options';

interface VerifyOptions {
  json?: boolean;
  server?: string | true;
  token?: string;
  since?: string;
  key?: string;
}

/**
 * `rackseal audit verify|list|checkpoint|public-key|prove`. `verify` recomputes the Merkle tree
 * straight from PostgreSQL (DATABASE_URL), for an auditor who trusts neither the API nor the control
 * plane; with `--server` it asks the control plane to (GET /v1/audit/verify). With `--since FILE` (a
 * checkpoint saved earlier by `audit checkpoint --save`) the log must also extend that checkpoint —
 * through the control plane the CLI checks that itself, signature and consistency proof. Exit 0
 * intact, 1 tampered, 2 unusable. `list` reads the records in append order, paged (GET /v1/audit,
 * scope `audit:read`).
 */
export function registerAudit(program: Command): void {
  const audit = program.command('audit').description('audit transparency log tools');

  audit
    .command('verify')
    .description('recompute the audit Merkle tree directly in PostgreSQL (uses DATABASE_URL), or with --server through the control plane')
    .option('--since <file>', 'also prove the log extends this saved checkpoint (from `audit checkpoint --save`): nothing before it was rewritten or removed')
    .option('--key <vkey-or-file>', `with --since: ${KEY_OPTION_HELP}`)
    .option('--json', 'machine-readable output')
    .addOption(explicitServerOption())
    .option('--token <token>', 'with --server: a token with audit:read (default: $RACKSEAL_TOKEN)')
    .action(async (options: VerifyOptions, command: Command) => {
      if (options.key !== undefined && options.since === undefined) {
        throw CliError.usage('--key checks the --since checkpoint: give --since FILE too');
      }
      const saved = options.since === undefined ? undefined : await readSavedCheckpoint(options.since, '--since');
      const server = explicitServer(options);
      const { verdict, provenTo } =
        server === undefined
          ? { verdict: await verifyInDatabase(saved, options.key), provenTo: undefined }
          : await verifyThroughServer(ServerClient.fromOptions(server, commandPath(command)), saved, options.key);
      report(verdict, options.json === true, provenTo);
    });

  withServerOptions(
    audit
      .command('list')
      .description('read audit records in the order they were appended (oldest first), pending ones included; page with --after')
      .addOption(idCursorOption('only records after this id (the ID of the last record of the previous page)'))
      .addOption(pageSizeOption('records'))
      .option('--json', 'machine-readable output (the records as the API returns them, leaf hashes included)'),
  ).action(async (options: { after?: number; limit?: number; json?: boolean }, command: Command) => {
    const limit = pageSize(options.limit);
    const { body } = await ServerClient.forCommand(command).get<AuditRecordView[]>('v1/audit', { query: { after: options.after, limit } });
    if (options.json === true) {
      process.stdout.write(`${terminalJson(body)}\n`);
      return;
    }
    const rows = body.map((r) => [String(r.id), r.seq === null ? 'pending' : String(r.seq), r.recordedAt, r.actor, r.action, r.subject, r.outcome, JSON.stringify(r.details)]);
    const more = nextPageHint(body, limit, (last) => String(last.id));
    process.stdout.write(`${table(['ID', 'SEQ', 'RECORDED', 'ACTOR', 'ACTION', 'SUBJECT', 'OUTCOME', 'DETAILS'], rows)}${body.length} record(s)${more}\n`);
  });

  registerAuditCheckpoint(audit);
  registerAuditProve(audit);
}

/** The verifier in libs/audit, on the database; a pinned --key is checked against the saved note first. */
async function verifyInDatabase(saved: string | undefined, key: string | undefined): Promise<AuditVerification> {
  let sinceKey: string | undefined;
  if (saved !== undefined && key !== undefined) {
    const verifier = await readKeyOption(key);
    const pinned = await attempt(0, async () => openTrusted(saved, { verifiers: [verifier], described: 'the --key verifier key' }, 'your saved checkpoint'));
    if ('refused' in pinned) {
      return pinned.refused;
    }
    // The tree verifier opens the saved note with the pinned key too, not with the keys in the database.
    sinceKey = (await import('@rackseal/audit')).formatVerifierKey(verifier.name, verifier.publicKey);
  }
  return withDatabase({ schema: 'current' }, async (dataSource) =>
    (await import('@rackseal/audit')).verifyAuditTreeSnapshot(dataSource, saved === undefined ? {} : { since: saved, ...(sinceKey === undefined ? {} : { sinceKey }) }),
  );
}

/**
 * The control plane's verdict, then, with a saved checkpoint, what the CLI checks itself (the server
 * could answer "intact" for a rewritten log): the saved note's signature, the latest checkpoint's
 * signature, and the consistency proof between the two. `provenTo` is the size the CLI proved to.
 */
async function verifyThroughServer(
  client: ServerClient,
  saved: string | undefined,
  key: string | undefined,
): Promise<{ verdict: AuditVerification; provenTo?: number }> {
  const verdict = (await client.get<AuditVerification>('v1/audit/verify')).body;
  if (!verdict.ok || saved === undefined) {
    return { verdict };
  }
  const proven = await attempt(verdict.records, async () => {
    const keys = await trustedKeys(client, key);
    const savedCheckpoint = await openTrusted(saved, keys, 'your saved checkpoint');
    const latestNote = (await client.get<{ note?: unknown }>('v1/audit/checkpoint')).body?.note;
    const latest = await openTrusted(String(latestNote), keys, "the log's latest checkpoint");
    await checkExtends(client, savedCheckpoint, latest);
    return { since: { treeSize: savedCheckpoint.size, rootHash: savedCheckpoint.rootHash.toString('hex') }, provenTo: latest.size };
  });
  if ('refused' in proven) {
    return { verdict: proven.refused };
  }
  return { verdict: { ...verdict, since: proven.done.since }, provenTo: proven.done.provenTo };
}

/** Runs the CLI's own checks; a refusal becomes the verdict (its kind, no seq: it is about the whole log). */
async function attempt<T>(records: number, check: () => Promise<T>): Promise<{ done: T } | { refused: AuditVerification }> {
  try {
    return { done: await check() };
  } catch (error) {
    if (error instanceof AuditTrustError && error.kind !== 'proof') {
      return { refused: { ok: false, records, problem: { kind: error.kind, seq: null, message: error.message } } };
    }
    throw error;
  }
}

/** The verdict on stdout (text or JSON); a broken log also on stderr, with exit 1. */
function report(verdict: AuditVerification, json: boolean, provenTo: number | undefined): void {
  if (json) {
    process.stdout.write(`${terminalJson(verdict)}\n`);
  } else if (verdict.ok) {
    process.stdout.write(`audit log intact: ${verdict.records} records (${verdict.pending} pending), root ${verdict.rootHash}, ${verdict.checkpoints} checkpoints checked\n`);
    if (verdict.since !== undefined) {
      const how = provenTo === undefined ? '' : `: checked here with a consistency proof to the signed checkpoint of size ${provenTo}`;
      process.stdout.write(`it extends your saved checkpoint of size ${verdict.since.treeSize} (root ${verdict.since.rootHash})${how}\n`);
    }
  }
  if (!verdict.ok) {
    const at = verdict.problem.seq === null ? '' : ` at record ${verdict.problem.seq}`;
    process.stderr.write(`audit log broken${at}: ${verdict.problem.kind}: ${safe(verdict.problem.message)}\n`);
    process.exitCode = EXIT.invalid;
  }
}
