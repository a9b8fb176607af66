/**
 * The dashboard's in-browser inclusion verifier (ui/src/audit-proof.ts, issue 16) under Node's
 * WebCrypto, against the server's real answers: records appended through AuditLog on real
 * PostgreSQL, sequenced and signed by the worker's sequencer, proofs and checkpoints fetched over
 * HTTP from the control plane. Every record verifies; a tampered record, proof node, tree size,
 * index, checkpoint signature or a different key each fails at the step that names it; and on the
 * same inputs the verifier and libs/audit's Node verifiers (proof-verify.ts, checkpoint.ts) reach
 * the same verdicts.
 */
import type { INestApplication } from '@nestjs/common';
import type { AuditCheckpointView, AuditInclusionProofView, AuditPublicKeyView } from '@rackseal/api-contracts';
import { ApiTokens } from '@rackseal/api-tokens';
import {
  auditLeafBytes,
  AuditLog,
  generateAuditSigningKey,
  leafHash as nodeLeafHash,
  openCheckpoint,
  rootFromInclusionProof as nodeRootFromInclusionProof,
  verifyInclusion,
} from '@rackseal/audit';
import type { RacksealConfig } from '@rackseal/config';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import { createControlPlane } from '../apps/control-plane/src/create-control-plane';
import {
  hashFromHex,
  type InclusionVerdict,
  openSignedCheckpoint,
  parseVerifierKey,
  recordLeafHash,
  rootFromInclusionProof,
  toHex,
  verifyRecordInclusion,
} from '../ui/src/audit-proof';
import { testSequencer } from './support/audit-tree';
import { createTestDatabase, openDataSource, type TestDatabase } from './support/database';
import { createTestQueuePrefix, type TestQueuePrefix } from './support/redis';
import { testConfig } from './support/test-config';

/** An answer as a tamperer edits it. */
type Editable<T> = { -readonly [K in keyof T]: Editable<T[K]> };

/** Seven records appended, more in the tree with the control plane's own (the token issued) and one written around AuditLog: proofs of different shapes and lengths. */
const APPENDED = 7;

describe('in-browser audit inclusion verification (ui/src/audit-proof.ts)', () => {
  let db: TestDatabase;
  let prefix: TestQueuePrefix;
  let config: RacksealConfig;
  let app: INestApplication;
  let ds: DataSource;
  let token: string;
  let vkey: string;
  /** The signed tree's size: every record appended, the test's and the control plane's own. */
  let RECORDS: number;
  const answers = new Map<number, AuditInclusionProofView>();

  const get = async <T>(path: string): Promise<T> => {
    const response = await request(app.getHttpServer()).get(path).set('Authorization', `Bearer ${token}`);
    expect(response.status).toBe(200);
    return response.body as T;
  };
  /** A deep copy of record `seq`'s answer, to tamper with (JSON, not structuredClone: its objects would come from outside jest's realm, which canonicalJson refuses as not plain). */
  const answerOf = (seq: number): Editable<AuditInclusionProofView> => JSON.parse(JSON.stringify(answers.get(seq))) as Editable<AuditInclusionProofView>;
  const failedStep = (verdict: InclusionVerdict) => verdict.steps.find((s) => s.ok === false);
  const bytes = (hex: string): Buffer => Buffer.from(hex, 'hex');

  beforeAll(async () => {
    db = await createTestDatabase();
    prefix = createTestQueuePrefix();
    config = testConfig(db, prefix.prefix, { LOG_LEVEL: 'silent' });
    app = await createControlPlane(config);
    await app.init();
    ds = await openDataSource(db.url);
    token = (await app.get(ApiTokens).issue('auditor', ['audit:read'], 'test')).token;
    const audit = app.get(AuditLog);
    for (let i = 1; i <= APPENDED; i += 1) {
      // Details with nesting, unsorted keys, unicode and escapes: the canonical JSON must agree byte for byte.
      await audit.append({ actor: 'system:test', action: i % 2 === 0 ? 'test.even' : 'test.odd', subject: `machine:SN-${i}`, outcome: 'success', details: { z: i, a: { list: [1, 'två', null, true], quote: '"<b>\n' } } });
    }
    // A recorded_at with microseconds (no AuditLog writer stores one, but the leaf covers all six
    // digits, audit-timestamp.ts): the API must show the text the leaf covers for it to verify.
    await ds.query(
      `INSERT INTO audit_log (recorded_at, actor, action, subject, outcome, details) VALUES ('2026-01-01T10:00:00.123456Z', 'system:test', 'test.micro', '', 'success', '{}')`,
    );
    const sequencer = testSequencer(ds, config.masterKey.key!, { origin: config.audit.origin });
    try {
      await sequencer.drainOnce();
    } finally {
      await sequencer.stop();
    }
    const keys = await get<AuditPublicKeyView[]>('/v1/audit/public-keys');
    expect(keys).toHaveLength(1);
    vkey = keys[0]!.verifierKey;
    RECORDS = (await get<AuditCheckpointView>('/v1/audit/checkpoint')).treeSize;
    expect(RECORDS).toBeGreaterThan(APPENDED);
    for (let seq = 1; seq <= RECORDS; seq += 1) {
      answers.set(seq, await get<AuditInclusionProofView>(`/v1/audit/records/${seq}/proof`));
    }
  });

  afterAll(async () => {
    await app?.close();
    await ds?.destroy();
    await db?.drop();
    await prefix?.clear();
  });

  it('verifies every record of the real tree, and agrees with the server and with libs/audit on leaf, root and key', async () => {
    for (let seq = 1; seq <= RECORDS; seq += 1) {
      const answer = answerOf(seq);
      const verdict = await verifyRecordInclusion(seq, answer, vkey);
      expect([seq, verdict.verified, verdict.steps.map((s) => s.ok)]).toEqual([seq, true, [true, true, true, true, true]]);
      expect(verdict.leafHash).toBe(answer.record.leafHash);
      expect(verdict.computedRoot).toBe(answer.checkpoint.rootHash);
      expect(verdict.checkpointRoot).toBe(answer.checkpoint.rootHash);
      expect([verdict.treeSize, verdict.keyId]).toEqual([RECORDS, answer.checkpoint.keyId]);
      // libs/audit, on the same answer: the leaf bytes, the proof and the signature.
      const { record } = answer;
      const leaf = nodeLeafHash(auditLeafBytes({ ...record, seq, details: record.details as never }));
      expect(leaf.toString('hex')).toBe(verdict.leafHash);
      const opened = openCheckpoint(answer.checkpoint.note, vkey);
      expect(() => verifyInclusion(leaf, seq - 1, opened.size, answer.proof.map(bytes), opened.rootHash)).not.toThrow();
    }
    expect(answerOf(4).proof.length).toBeGreaterThan(0);
    expect([...answers.values()].filter((a) => a.record.action === 'test.micro').map((a) => a.record.recordedAt)).toEqual(['2026-01-01T10:00:00.123456Z']);
  });

  it('a tampered record fails at the inclusion proof: its leaf no longer leads to the signed root', async () => {
    const answer = answerOf(3);
    answer.record = { ...answer.record, details: { ...answer.record.details, z: 4 } };
    const verdict = await verifyRecordInclusion(3, answer, vkey);
    expect(verdict.verified).toBe(false);
    expect(verdict.steps.map((s) => s.ok)).toEqual([true, true, true, true, false]);
    expect(verdict.leafHash).not.toBe(answers.get(3)!.record.leafHash);
    expect(failedStep(verdict)?.detail).toBe(
      `the proof leads to root ${verdict.computedRoot}, not the signed root ${answer.checkpoint.rootHash}: the record or the proof was changed`,
    );
    // The record's recordedAt, actor, outcome: each one changes the leaf too.
    for (const change of [{ recordedAt: '2026-01-01T00:00:00.000Z' }, { actor: 'system:other' }, { outcome: 'refused' as const }, { subject: 'machine:SN-X' }]) {
      const altered = answerOf(3);
      altered.record = { ...altered.record, ...change };
      expect([change, (await verifyRecordInclusion(3, altered, vkey)).verified]).toEqual([change, false]);
    }
    const leaf = nodeLeafHash(auditLeafBytes({ ...answer.record, seq: 3, details: answer.record.details as never }));
    expect(leaf.toString('hex')).toBe(verdict.leafHash);
    expect(() => verifyInclusion(leaf, 2, RECORDS, answer.proof.map(bytes), bytes(answer.checkpoint.rootHash))).toThrow('leads to another root');
  });

  it('a tampered proof node, a proof too short or too long, or a malformed node each fail at the inclusion proof', async () => {
    const answer = answerOf(5);
    const first = answer.proof[0]!;
    answer.proof[0] = `${first[0] === '0' ? '1' : '0'}${first.slice(1)}`;
    const verdict = await verifyRecordInclusion(5, answer, vkey);
    expect([verdict.verified, failedStep(verdict)?.step]).toEqual([false, 'inclusion']);
    expect(failedStep(verdict)?.detail).toContain('not the signed root');
    const leaf = bytes(verdict.leafHash!);
    expect(() => verifyInclusion(leaf, 4, RECORDS, answer.proof.map(bytes), bytes(answer.checkpoint.rootHash))).toThrow('leads to another root');

    const short = answerOf(5);
    short.proof.pop();
    expect(failedStep(await verifyRecordInclusion(5, short, vkey))?.detail).toBe(`an inclusion proof of ${short.proof.length} hashes does not fit leaf 4 of ${RECORDS}`);
    const long = answerOf(5);
    long.proof.push(long.proof[0]!);
    expect(failedStep(await verifyRecordInclusion(5, long, vkey))?.detail).toBe(`an inclusion proof of ${long.proof.length} hashes does not fit leaf 4 of ${RECORDS}`);
    const malformed = answerOf(5);
    malformed.proof[1] = 'XYZ';
    expect(failedStep(await verifyRecordInclusion(5, malformed, vkey))?.detail).toBe('proof element 1 is not 64 lowercase hex digits');
  });

  it('a wrong tree size or index is refused: the server\'s unsigned fields are compared with the signed ones, and the walk fails as libs/audit\'s does', async () => {
    const size = answerOf(2);
    size.treeSize = RECORDS + 1;
    const bySize = await verifyRecordInclusion(2, size, vkey);
    expect([bySize.verified, failedStep(bySize)?.step]).toEqual([false, 'checkpoint']);
    expect(failedStep(bySize)?.detail).toContain(`the proof is for a tree of ${RECORDS + 1} leaves`);
    const root = answerOf(2);
    root.checkpoint.rootHash = answerOf(3).record.leafHash!;
    expect(failedStep(await verifyRecordInclusion(2, root, vkey))?.detail).toContain('the server lists its root as');

    // Another record's answer for this seq, or this answer for another seq: the index is the record's own.
    const moved = answerOf(2);
    moved.record = { ...moved.record, seq: 3 };
    expect(failedStep(await verifyRecordInclusion(2, moved, vkey))?.detail).toBe('the server answered with record 3, not 2');
    const asked = await verifyRecordInclusion(3, answerOf(2), vkey);
    expect([asked.verified, failedStep(asked)?.detail]).toEqual([false, 'the server answered with record 2, not 3']);

    // The walk itself, for every leaf, with wrong indices and sizes: the same root, or a refusal, as libs/audit's.
    for (let seq = 1; seq <= RECORDS; seq += 1) {
      const answer = answerOf(seq);
      const leaf = bytes(answer.record.leafHash!);
      const proof = answer.proof.map(bytes);
      for (const [index, treeSize] of [[seq - 1, RECORDS], [seq - 2, RECORDS], [seq, RECORDS], [seq - 1, RECORDS - 1], [seq - 1, RECORDS + 1], [seq - 1, 2 * RECORDS], [seq - 1, seq - 1]] as const) {
        const mine = await rootFromInclusionProof(leaf, index, treeSize, proof).then(toHex, (e: Error) => `refused: ${e.message}`);
        let theirs: string;
        try {
          theirs = nodeRootFromInclusionProof(leaf, index, treeSize, proof).toString('hex');
        } catch (e) {
          theirs = `refused: ${(e as Error).message}`;
        }
        // Same verdict; libs/audit's messages also name the element, so compare refusal with refusal.
        expect([seq, index, treeSize, mine.startsWith('refused'), mine === answer.checkpoint.rootHash]).toEqual([
          seq,
          index,
          treeSize,
          theirs.startsWith('refused'),
          theirs === answer.checkpoint.rootHash,
        ]);
        if (!mine.startsWith('refused')) {
          expect(mine).toBe(theirs);
        }
        // Not every wrong size is caught by the walk (leaf 0 climbs the same path in trees of 5 to 8
        // leaves): that is why the size walked is the signed checkpoint's, never the server's field.
        if (index === seq - 1 && treeSize === RECORDS) {
          expect(mine).toBe(answer.checkpoint.rootHash);
        }
      }
    }
  });

  it('a tampered checkpoint signature or signed text fails at the signature, as libs/audit refuses it', async () => {
    const answer = answerOf(1);
    const note = answer.checkpoint.note;
    const [text, signatureLine] = [note.slice(0, note.lastIndexOf('\n\n') + 2), note.slice(note.lastIndexOf('\n\n') + 2)];
    const space = signatureLine.lastIndexOf(' ');
    const signature = Buffer.from(signatureLine.slice(space + 1, -1), 'base64');
    signature[10] = signature[10]! ^ 0x01;
    answer.checkpoint.note = `${text}${signatureLine.slice(0, space + 1)}${signature.toString('base64')}\n`;
    const verdict = await verifyRecordInclusion(1, answer, vkey);
    expect([verdict.verified, verdict.steps.map((s) => s.ok)]).toEqual([false, [true, false, null, null, null]]);
    expect(failedStep(verdict)?.detail).toMatch(/^the signature by \S+ does not verify: the checkpoint was modified or not signed by that key$/);
    expect(verdict.steps[2]!.detail).toBe('not checked: an earlier step failed');
    expect(() => openCheckpoint(answer.checkpoint.note, vkey)).toThrow('does not verify');

    // The signed text changed instead (another root, the same signature).
    const rewritten = answerOf(1);
    const otherRoot = Buffer.from(answerOf(2).record.leafHash!, 'hex').toString('base64');
    const lines = rewritten.checkpoint.note.split('\n');
    lines[2] = otherRoot;
    rewritten.checkpoint.note = lines.join('\n');
    expect(failedStep(await verifyRecordInclusion(1, rewritten, vkey))?.step).toBe('signature');
    expect(() => openCheckpoint(rewritten.checkpoint.note, vkey)).toThrow('does not verify');
    await expect(openSignedCheckpoint('not a note', await parseVerifierKey(vkey))).rejects.toThrow('not a signed note');
  });

  it('another key, even under the log\'s name, or a key whose ID does not match, is refused', async () => {
    const other = generateAuditSigningKey(config.audit.origin).verifierKey;
    const verdict = await verifyRecordInclusion(1, answerOf(1), other);
    expect([verdict.verified, verdict.steps.map((s) => s.ok)]).toEqual([false, [true, false, null, null, null]]);
    expect(failedStep(verdict)?.detail).toBe(`the checkpoint has no signature by ${other.split('+').slice(0, 2).join('+')} (signed by: ${vkey.slice(0, vkey.indexOf('+', vkey.indexOf('+') + 1))})`);
    expect(() => openCheckpoint(answerOf(1).checkpoint.note, other)).toThrow('no signature by a known key');

    // The right key material under a stated ID that is not its own; and no key at all.
    // Split at the first two "+" only: the base64 key may hold more.
    const [first, second] = [vkey.indexOf('+'), vkey.indexOf('+', vkey.indexOf('+') + 1)];
    const id = vkey.slice(first + 1, second);
    const wrongId = `${vkey.slice(0, first)}+${id === '00000000' ? '00000001' : '00000000'}${vkey.slice(second)}`;
    const byId = await verifyRecordInclusion(1, answerOf(1), wrongId);
    expect([byId.steps[0]!.ok, byId.steps[0]!.detail]).toEqual([false, expect.stringMatching(/^the verifier key states key ID 0000000[01] but its name and key give [0-9a-f]{8}$/)]);
    expect((await verifyRecordInclusion(1, answerOf(1), 'not-a-key')).steps[0]!.detail).toBe('a verifier key is <name>+<8 hex digits>+<base64 key>, three parts joined by "+"');
  });

  it('recomputes leaves from the record as libs/audit does, and refuses what is not a leaf', async () => {
    const record = answerOf(6).record;
    expect(toHex(await recordLeafHash({ ...record, seq: 6 }))).toBe(nodeLeafHash(auditLeafBytes({ ...record, seq: 6, details: record.details as never })).toString('hex'));
    await expect(recordLeafHash({ ...record, seq: 6, details: { n: Number.NaN } })).rejects.toThrow('the record cannot be a leaf: record.details.n is not a finite number');
    expect(() => hashFromHex('AB'.repeat(32), 'x')).toThrow('x is not 64 lowercase hex digits');
  });
});
