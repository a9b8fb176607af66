import type { AuditInclusionProofView } from '@rackseal/api-contracts';
import type { Command } from 'commander';
import { ServerClient, withServerOptions } from '../server-client';
import { terminalJson } from '../terminal-text';
import { AuditTrustError, KEY_OPTION_HELP, openTrusted, proofHashes, trustedKeys } from './audit-trust';
import { wholeNumberArgument } from './paging-options';

/**
 * `rackseal audit prove SEQ`: that record SEQ is in the signed tree, checked here and not taken from
 * the server: the leaf is recomputed from the record's content (libs/audit audit-leaf.ts), the
 * inclusion proof must lead from it to the checkpoint's root (RFC 9162 §2.1.3.2), and the checkpoint
 * must be signed by a trusted key. Exit 0 proven, 1 refused (naming what failed), 2 usage.
 */
export function registerAuditProve(audit: Command): void {
  withServerOptions(
    audit
      .command('prove')
      .description('prove that record SEQ is in the signed audit tree: recompute its leaf, check the inclusion proof and the checkpoint signature')
      .argument('<seq>', 'the record\'s sequence number (SEQ in `audit list`)', wholeNumberArgument('seq', 1))
      .option('--size <n>', 'prove against the signed checkpoint of this tree size (default: the latest)', wholeNumberArgument('--size', 1))
      .option('--key <vkey-or-file>', KEY_OPTION_HELP)
      .option('--json', 'machine-readable output'),
  ).action(async (seq: number, options: { size?: number; key?: string; json?: boolean }, command: Command) => {
    const { auditLeafBytes, leafHash, MerkleProofError, verifyInclusion } = await import('@rackseal/audit');
    const client = ServerClient.forCommand(command);
    const keys = await trustedKeys(client, options.key);
    const { body } = await client.get<AuditInclusionProofView>(`v1/audit/records/${seq}/proof`, { query: { size: options.size } });
    const checkpoint = await openTrusted(String(body?.checkpoint?.note), keys, 'the checkpoint the proof is against');
    if (options.size !== undefined && checkpoint.size !== options.size) {
      throw new AuditTrustError('proof', `the control plane proved against the checkpoint of size ${checkpoint.size}, not ${options.size}`);
    }
    const record = body.record;
    if (record?.seq !== seq) {
      throw new AuditTrustError('proof', `the control plane answered with record ${String(record?.seq)}, not ${seq}`);
    }
    const proof = proofHashes(body.proof, 'the inclusion proof', 'proof');
    const leaf = leafHash(
      auditLeafBytes({
        seq,
        recordedAt: record.recordedAt,
        actor: record.actor,
        action: record.action,
        subject: record.subject,
        outcome: record.outcome,
        details: record.details as Parameters<typeof auditLeafBytes>[0]['details'],
      }),
    );
    try {
      verifyInclusion(leaf, seq - 1, checkpoint.size, proof, checkpoint.rootHash);
    } catch (error) {
      if (error instanceof MerkleProofError) {
        throw new AuditTrustError('proof', `record ${seq} is not proven in the log of size ${checkpoint.size}: ${error.message} (the record or the stored tree was changed)`);
      }
      throw error;
    }
    const rootHash = checkpoint.rootHash.toString('hex');
    if (options.json === true) {
      process.stdout.write(`${terminalJson({ ok: true, seq, treeSize: checkpoint.size, rootHash, leafHash: leaf.toString('hex'), keyId: checkpoint.keyId })}\n`);
      return;
    }
    process.stdout.write(`record ${seq} is in the log of size ${checkpoint.size} (root ${rootHash}), checkpoint signed by key ${checkpoint.keyId}\n`);
  });
}
