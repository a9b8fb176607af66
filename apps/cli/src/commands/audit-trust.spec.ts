import {
  assembleProof,
  consistencyProofRanges,
  EMPTY_TREE_ROOT,
  generateAuditSigningKey,
  leafHash,
  nodeIdsFor,
  nodeKey,
  rootOfLeafHashes,
  signCheckpoint,
  type VerifiedCheckpoint,
} from '@rackseal/audit';
import type { ServerClient } from '../server-client';
import { AuditTrustError, checkExtends, openTrusted, proofHashes, readKeyOption } from './audit-trust';

const ORIGIN = 'rackseal.test/audit';
const key = generateAuditSigningKey(ORIGIN);
const leaves = Array.from({ length: 8 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));
const rootAt = (size: number): Buffer => rootOfLeafHashes(leaves.slice(0, size));
const note = (size: number, root = rootAt(size)): string =>
  signCheckpoint({ origin: ORIGIN, size, rootHash: root, time: new Date(1_700_000_000_000) }, { name: ORIGIN, privateKey: key.privateKey });
const checkpoint = (size: number, root = rootAt(size)): VerifiedCheckpoint => ({ origin: ORIGIN, size, rootHash: root, extensions: [], time: new Date(0) });

/** A control plane that answers every GET with `body`, and records what was asked. */
function serving(body: unknown): { client: ServerClient; asked: unknown[] } {
  const asked: unknown[] = [];
  const client = {
    get: (path: string, options: unknown) => {
      asked.push([path, options]);
      return Promise.resolve({ status: 200, body });
    },
  } as unknown as ServerClient;
  return { client, asked };
}

async function refusal(promise: Promise<unknown>): Promise<AuditTrustError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AuditTrustError);
  return error as AuditTrustError;
}

describe('audit-trust: what the CLI checks itself', () => {
  const keys = { verifiers: [{ name: ORIGIN, keyId: parseInt(key.keyId, 16), publicKey: key.publicKey }], described: 'the test key' };

  it('opens a checkpoint signed by a trusted key and refuses another key, a changed note and a non-note (exit 1)', async () => {
    const opened = await openTrusted(note(5), keys, 'the checkpoint');
    expect([opened.size, opened.rootHash.equals(rootAt(5)), opened.keyId]).toEqual([5, true, key.keyId]);

    const other = generateAuditSigningKey(ORIGIN);
    const otherKeys = { verifiers: [await readKeyOption(other.verifierKey)], described: 'the --key verifier key' };
    const foreign = await refusal(openTrusted(note(5), otherKeys, 'the checkpoint'));
    expect([foreign.kind, foreign.exitCode, foreign.message]).toEqual(['checkpoint-signature', 1, `the checkpoint is signed by ${ORIGIN}+${key.keyId}, none of the --key verifier key`]);

    const changed = await refusal(openTrusted(note(5).replace('\n5\n', '\n6\n'), keys, 'the checkpoint'));
    expect(changed.message).toMatch(new RegExp(`^the checkpoint does not verify with key ${ORIGIN}\\+${key.keyId}: the signature by .* does not verify`));
    expect((await refusal(openTrusted('hello\n', keys, 'the checkpoint'))).message).toBe('the checkpoint is not a signed note: the note has no blank line before its signatures');
  });

  it('accepts a valid consistency proof from the server and asks for exactly the two sizes', async () => {
    // The proof the control plane would serve (RFC 9162 §2.1.4.1, m = 3, n = 8), its nodes computed from the leaves.
    const ranges = consistencyProofRanges(3, 8);
    const nodes = new Map(nodeIdsFor(ranges).map((id) => [nodeKey(id), rootOfLeafHashes(leaves.slice(id.index * 2 ** id.level, (id.index + 1) * 2 ** id.level))]));
    const proof = assembleProof(ranges, nodes).map((h) => h.toString('hex'));
    const { client, asked } = serving({ from: 3, to: 8, proof });
    await expect(checkExtends(client, checkpoint(3), checkpoint(8))).resolves.toBeUndefined();
    expect(asked).toEqual([['v1/audit/consistency', { query: { from: 3, to: 8 } }]]);

    const forged = await refusal(checkExtends(client, checkpoint(3, leaves[0]), checkpoint(8)));
    expect([forged.kind, forged.message]).toEqual(['not-extending', expect.stringMatching(/^the log's checkpoint of size 8 does not extend your saved checkpoint of size 3 \(root [0-9a-f]{64}\): the consistency proof .* leads to another first root; history was rewritten$/)]);
  });

  it('refuses a shrunk log, equal sizes with different roots, a forged or malformed proof, and a wrong empty root (not-extending)', async () => {
    const none = serving(undefined);
    const shrunk = await refusal(checkExtends(none.client, checkpoint(5), checkpoint(4)));
    expect([shrunk.kind, shrunk.message]).toEqual(['not-extending', "the log's latest checkpoint has 4 records, fewer than your saved checkpoint's 5: history was removed"]);
    const rewritten = await refusal(checkExtends(none.client, checkpoint(5), checkpoint(5, rootAt(6))));
    expect(rewritten.message).toMatch(/^the log's latest checkpoint and your saved checkpoint both have 5 records but different roots \([0-9a-f]{64}, yours [0-9a-f]{64}\): history was rewritten$/);
    await expect(checkExtends(none.client, checkpoint(5), checkpoint(5))).resolves.toBeUndefined();
    await expect(checkExtends(none.client, checkpoint(0, EMPTY_TREE_ROOT), checkpoint(8))).resolves.toBeUndefined();
    expect((await refusal(checkExtends(none.client, checkpoint(0, rootAt(1)), checkpoint(8)))).message).toMatch(/the first root is not the empty tree's/);
    expect(none.asked).toEqual([]);

    const random = serving({ proof: [leaves[1]!.toString('hex'), leaves[2]!.toString('hex')] });
    expect((await refusal(checkExtends(random.client, checkpoint(3), checkpoint(8)))).kind).toBe('not-extending');
    const malformed = serving({ proof: ['zz'] });
    expect((await refusal(checkExtends(malformed.client, checkpoint(3), checkpoint(8)))).message).toBe(
      'the consistency proof from the control plane is malformed: element 0 is not 64 lowercase hex digits',
    );
    expect(() => proofHashes('nope', 'the inclusion proof', 'proof')).toThrow('the inclusion proof from the control plane is not a list of hashes');
  });

  it('reads --key inline or from a file, and names both when it is neither (exit 2)', async () => {
    expect((await readKeyOption(` ${key.verifierKey}\n`)).publicKey.equals(key.publicKey)).toBe(true);
    await expect(readKeyOption('nope')).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(/^--key: the --key value \(no such file either\) is not a verifier key/) });
  });
});
