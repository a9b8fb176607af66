import { existsSync } from 'node:fs';
import type { AuditConsistencyProofView, AuditProblemKind, AuditPublicKeyView } from '@rackseal/api-contracts';
import type { NoteVerifier, VerifiedCheckpoint } from '@rackseal/audit';
import { CliError, EXIT, readInput } from '@rackseal/command-line';
import type { ServerClient } from '../server-client';
import { safe } from '../terminal-text';

/**
 * What the CLI checks itself rather than take from the control plane: checkpoint signatures
 * (C2SP signed-note, tlog-checkpoint) and Merkle proofs (RFC 9162 §2.1.3.2, §2.1.4.2). Every
 * refusal is an AuditTrustError (exit 1) naming what failed.
 */

/** A check the CLI made and refused; `kind` is the verdict's problem kind for `--json`. */
export class AuditTrustError extends CliError {
  constructor(
    readonly kind: AuditProblemKind | 'proof',
    message: string,
  ) {
    super(EXIT.invalid, message);
    this.name = 'AuditTrustError';
  }
}

/** The keys checkpoints must be signed by, and how to name them in a refusal. */
export interface TrustedKeys {
  readonly verifiers: readonly NoteVerifier[];
  readonly described: string;
}

/** `--key VKEY-or-FILE`: the operator's pinned verifier key; without it, the log's keys as served. */
export const KEY_OPTION_HELP =
  'check checkpoint signatures with this verifier key (<name>+<key id>+<base64>, or a file holding it) instead of trusting the keys the control plane serves';

/**
 * The keys to trust: the pinned `--key` (the server's keys are then not asked for), else every key
 * GET /v1/audit/public-keys lists — which proves only that the server signed, so `--key` is for an
 * auditor who does not trust the control plane.
 */
export async function trustedKeys(client: ServerClient, keyOption: string | undefined): Promise<TrustedKeys> {
  const { parseVerifierKey } = await import('@rackseal/audit');
  if (keyOption !== undefined) {
    const verifier = await readKeyOption(keyOption);
    return { verifiers: [verifier], described: 'the --key verifier key' };
  }
  const { body } = await client.get<AuditPublicKeyView[]>('v1/audit/public-keys');
  const verifiers = (Array.isArray(body) ? body : []).flatMap((k) => {
    try {
      return [parseVerifierKey(String(k.verifierKey))];
    } catch {
      return [];
    }
  });
  return { verifiers, described: "the log's public keys (GET /v1/audit/public-keys)" };
}

/** A verifier key given inline, or the path of a file holding one (one line). */
export async function readKeyOption(value: string): Promise<NoteVerifier> {
  const { parseVerifierKey } = await import('@rackseal/audit');
  const fromFile = existsSync(value);
  const text = fromFile ? readInput(value, '--key', 4096).toString('utf8').trim() : value.trim();
  // `audit public-key > FILE` writes every key the log has used, one per line (a changed
  // AUDIT_LOG_ORIGIN or AUDIT_SIGNING_KEY adds one): --key pins exactly one, so say which to keep
  // rather than report the joined lines as bad base64.
  const lines = text.split('\n').filter((line) => line.trim() !== '').length;
  if (fromFile && lines > 1) {
    throw CliError.usage(
      `--key: the file ${JSON.stringify(value)} holds ${lines} lines; it must hold one verifier key (rackseal audit public-key prints every key the log has used, oldest first: keep the one to pin)`,
    );
  }
  try {
    return parseVerifierKey(text);
  } catch (error) {
    const source = fromFile ? `the file ${JSON.stringify(value)}` : 'the --key value (no such file either)';
    throw CliError.usage(`--key: ${source} is not a verifier key <name>+<key id>+<base64 key>: ${(error as Error).message}`);
  }
}

/**
 * Opens a checkpoint note with a trusted key: the note must carry a signature by one of them that
 * verifies, and be a rackseal checkpoint whose origin is the key's name. `what` names the note in
 * the refusal ("the latest checkpoint", "your saved checkpoint").
 */
export async function openTrusted(note: string, keys: TrustedKeys, what: string): Promise<VerifiedCheckpoint & { readonly keyId: string }> {
  const { CheckpointError, keyIdHex, openCheckpoint, parseSignedNote, SignedNoteError } = await import('@rackseal/audit');
  let signedBy: { name: string; keyId: number }[];
  try {
    signedBy = [...parseSignedNote(note).signatures];
  } catch (error) {
    throw new AuditTrustError('checkpoint-signature', `${what} is not a signed note: ${safe((error as Error).message)}`);
  }
  const verifier = keys.verifiers.find((v) => signedBy.some((s) => s.name === v.name && s.keyId === v.keyId));
  if (verifier === undefined) {
    const by = signedBy.map((s) => `${s.name}+${keyIdHex(s.keyId)}`).join(', ');
    throw new AuditTrustError('checkpoint-signature', `${what} is signed by ${safe(by)}, none of ${keys.described}`);
  }
  try {
    return { ...openCheckpoint(note, verifier), keyId: keyIdHex(verifier.keyId) };
  } catch (error) {
    if (error instanceof SignedNoteError || error instanceof CheckpointError) {
      throw new AuditTrustError('checkpoint-signature', `${what} does not verify with key ${verifier.name}+${keyIdHex(verifier.keyId)}: ${safe(error.message)}`);
    }
    throw error;
  }
}

/** Proof hashes as the API sends them (lowercase hex, 32 bytes each); anything else is refused. */
export function proofHashes(proof: unknown, what: string, kind: AuditTrustError['kind']): Buffer[] {
  if (!Array.isArray(proof)) {
    throw new AuditTrustError(kind, `${what} from the control plane is not a list of hashes`);
  }
  return proof.map((hash, i) => {
    if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
      throw new AuditTrustError(kind, `${what} from the control plane is malformed: element ${i} is not 64 lowercase hex digits`);
    }
    return Buffer.from(hash, 'hex');
  });
}

/**
 * That `latest` extends `saved` (RFC 9162 §2.1.4.2), checked here with a consistency proof fetched
 * from the control plane: equal sizes need equal roots, a smaller latest tree means history was
 * removed, and any proof that does not lead to both signed roots means it was rewritten.
 */
export async function checkExtends(client: ServerClient, saved: VerifiedCheckpoint, latest: VerifiedCheckpoint): Promise<void> {
  const { MerkleProofError, verifyConsistency } = await import('@rackseal/audit');
  const hex = (b: Buffer): string => b.toString('hex');
  if (saved.size > latest.size) {
    throw new AuditTrustError('not-extending', `the log's latest checkpoint has ${latest.size} records, fewer than your saved checkpoint's ${saved.size}: history was removed`);
  }
  if (saved.size === latest.size && !saved.rootHash.equals(latest.rootHash)) {
    throw new AuditTrustError(
      'not-extending',
      `the log's latest checkpoint and your saved checkpoint both have ${saved.size} records but different roots (${hex(latest.rootHash)}, yours ${hex(saved.rootHash)}): history was rewritten`,
    );
  }
  // RFC 9162 §2.1.4 defines proofs for 0 < m < n; from the empty tree, or between equal sizes, the proof is empty.
  const proof =
    saved.size === 0 || saved.size === latest.size
      ? []
      : proofHashes(
          (await client.get<AuditConsistencyProofView>('v1/audit/consistency', { query: { from: saved.size, to: latest.size } })).body?.proof,
          'the consistency proof',
          'not-extending',
        );
  try {
    verifyConsistency(saved.size, latest.size, proof, saved.rootHash, latest.rootHash);
  } catch (error) {
    if (error instanceof MerkleProofError) {
      throw new AuditTrustError(
        'not-extending',
        `the log's checkpoint of size ${latest.size} does not extend your saved checkpoint of size ${saved.size} (root ${hex(saved.rootHash)}): ${error.message}; history was rewritten`,
      );
    }
    throw error;
  }
}
