import type { AuditInclusionProofView } from '@rackseal/api-contracts';
import { auditLeafText } from '@rackseal/audit/audit-leaf-text';
import type { JsonValue } from '@rackseal/audit/canonical-json';

/*
 * The audit view's "Verify inclusion", done in the browser with WebCrypto (no DOM, so jest runs it
 * under Node's WebCrypto too): the leaf is recomputed from the record as libs/audit defines it
 * (audit-leaf-text.ts, imported, not copied), the inclusion proof is walked to a root (RFC 9162
 * §2.1.3.2), that root must be the one the checkpoint signs, and the checkpoint (C2SP
 * tlog-checkpoint in a C2SP signed note) must carry a valid Ed25519 signature (RFC 8032) by the
 * verifier key given. libs/audit's verifiers (proof-verify.ts, signed-note.ts) run on Node's
 * Buffer and node:crypto, which no browser has: this is their WebCrypto counterpart, and
 * test/ui-audit-proof.test.ts holds both to the same verdicts on the same inputs.
 */

/** What one step found: `ok` null when it could not be checked because an earlier step failed. */
export interface VerificationStep {
  readonly step: 'key' | 'signature' | 'checkpoint' | 'record' | 'inclusion';
  readonly title: string;
  readonly ok: boolean | null;
  readonly detail: string;
}

export interface InclusionVerdict {
  readonly verified: boolean;
  readonly steps: readonly VerificationStep[];
  /** Lowercase hex, when computed. */
  readonly leafHash?: string;
  readonly computedRoot?: string;
  readonly checkpointRoot?: string;
  readonly treeSize?: number;
  readonly keyId?: string;
}

/** A refusal naming what was wrong (shown to the operator as is). */
export class AuditProofError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditProofError';
  }
}

/** An Ed25519 signed-note verifier key (c2sp.org/signed-note §Verifier keys). */
export interface NoteVerifierKey {
  readonly name: string;
  /** 8 lowercase hex digits. */
  readonly keyId: string;
  readonly publicKey: Uint8Array<ArrayBuffer>;
}

/** A checkpoint whose signature verified (c2sp.org/tlog-checkpoint). */
export interface OpenedCheckpoint {
  readonly origin: string;
  readonly size: number;
  readonly rootHash: Uint8Array<ArrayBuffer>;
  /** Unix milliseconds of rackseal's `timestamp` extension line. */
  readonly time: number;
}

const HASH_BYTES = 32;
const ED25519_TYPE = 0x01;
const ED25519_PUBLIC_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
/** The signed-note limit libs/audit reads notes within (signed-note.ts MAX_NOTE_BYTES). */
const MAX_NOTE_BYTES = 128 * 1024;
const SIGNATURE_LINE_PREFIX = '\u2014 ';
const CANONICAL_DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX_HASH = /^[0-9a-f]{64}$/;

/** The platform's SubtleCrypto, named through globalThis so the DOM's and Node's typings both fit. */
function subtle(): (typeof globalThis)['crypto']['subtle'] {
  const subtle = (globalThis.crypto as (typeof globalThis)['crypto'] | undefined)?.subtle;
  if (subtle === undefined) {
    // A page served over plain HTTP from a non-local address is not a secure context: no SubtleCrypto.
    throw new AuditProofError('this browser offers no WebCrypto here (SubtleCrypto needs HTTPS or localhost)');
  }
  return subtle;
}

async function sha256(...parts: readonly Uint8Array[]): Promise<Uint8Array<ArrayBuffer>> {
  const joined = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    joined.set(part, at);
    at += part.length;
  }
  return new Uint8Array(await subtle().digest('SHA-256', joined));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/** 64 lowercase hex digits as 32 bytes; anything else is refused, naming `what`. */
export function hashFromHex(text: unknown, what: string): Uint8Array<ArrayBuffer> {
  if (typeof text !== 'string' || !HEX_HASH.test(text)) {
    throw new AuditProofError(`${what} is not 64 lowercase hex digits`);
  }
  const bytes = new Uint8Array(HASH_BYTES);
  for (let i = 0; i < HASH_BYTES; i += 1) {
    bytes[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
  }
  return bytes;
}

/** Standard base64 with padding, only its one canonical spelling (as libs/audit reads it); undefined otherwise. */
function strictBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    return undefined;
  }
  const binary = atob(text);
  const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
  return btoa(binary) === text ? bytes : undefined;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** MTH({d}) = SHA-256(0x00 ‖ d) (RFC 9162 §2.1.1). */
export function leafHash(leaf: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return sha256(new Uint8Array([0x00]), leaf);
}

/** SHA-256(0x01 ‖ left ‖ right) (RFC 9162 §2.1.1). */
function nodeHash(left: Uint8Array, right: Uint8Array): Promise<Uint8Array<ArrayBuffer>> {
  return sha256(new Uint8Array([0x01]), left, right);
}

/** A record's content as the API shows it (GET /v1/audit, the proof's `record`). */
export interface RecordContent {
  readonly seq: number;
  readonly recordedAt: string;
  readonly actor: string;
  readonly action: string;
  readonly subject: string;
  readonly outcome: 'success' | 'refused' | 'failure';
  readonly details: Record<string, unknown>;
}

/** The leaf hash of a sequenced record, recomputed from its content (libs/audit audit-leaf-text.ts). */
export async function recordLeafHash(record: RecordContent): Promise<Uint8Array<ArrayBuffer>> {
  let text: string;
  try {
    text = auditLeafText({ ...record, details: record.details as { [key: string]: JsonValue } });
  } catch (error) {
    throw new AuditProofError(`the record cannot be a leaf: ${(error as Error).message}`);
  }
  return leafHash(new TextEncoder().encode(text));
}

/**
 * The root an inclusion proof leads to (RFC 9162 §2.1.3.2 steps 1–5): what a tree of `size` leaves
 * has at its root if `leaf` is its leaf `index`. Halving uses Math.floor, never 32-bit bit operators.
 */
export async function rootFromInclusionProof(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[]): Promise<Uint8Array<ArrayBuffer>> {
  for (const [value, what] of [[index, 'the leaf index'], [size, 'the tree size']] as const) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new AuditProofError(`${what} must be a non-negative integer below 2^53, not ${String(value)}`);
    }
  }
  if (index >= size) {
    throw new AuditProofError(`leaf ${index} is not in a tree of ${size} leaves`);
  }
  if (leaf.length !== HASH_BYTES || proof.some((p) => p.length !== HASH_BYTES)) {
    throw new AuditProofError('every hash of an inclusion proof is 32 bytes');
  }
  const wrongLength = (): AuditProofError => new AuditProofError(`an inclusion proof of ${proof.length} hashes does not fit leaf ${index} of ${size}`);
  let fn = index;
  let sn = size - 1;
  let r: Uint8Array<ArrayBuffer> = new Uint8Array(leaf);
  for (const p of proof) {
    if (sn === 0) {
      throw wrongLength();
    }
    if (fn % 2 === 1 || fn === sn) {
      r = await nodeHash(p, r);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) {
    throw wrongLength();
  }
  return r;
}

/** key ID = SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key)[:4] (c2sp.org/signed-note §Ed25519 signatures), as hex. */
async function ed25519KeyId(name: string, publicKey: Uint8Array): Promise<string> {
  return toHex((await sha256(new TextEncoder().encode(name), new Uint8Array([0x0a, ED25519_TYPE]), publicKey)).subarray(0, 4));
}

/** Reads an Ed25519 vkey `<name>+<key id>+<base64(0x01 ‖ key)>`; the ID it states must be the one its name and key give. */
export async function parseVerifierKey(vkey: string): Promise<NoteVerifierKey> {
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (second < 0) {
    throw new AuditProofError('a verifier key is <name>+<8 hex digits>+<base64 key>, three parts joined by "+"');
  }
  const name = vkey.slice(0, first);
  const keyId = vkey.slice(first + 1, second);
  if (name.length === 0 || /[\s+]/u.test(name) || [...name].some((c) => c.charCodeAt(0) < 0x20)) {
    throw new AuditProofError('the verifier key name is empty or holds a space, "+" or a control character');
  }
  if (!/^[0-9a-f]{8}$/.test(keyId)) {
    throw new AuditProofError(`the verifier key ID "${keyId}" is not 8 lowercase hex digits`);
  }
  const material = strictBase64(vkey.slice(second + 1));
  if (material === undefined || material[0] !== ED25519_TYPE || material.length !== 1 + ED25519_PUBLIC_KEY_BYTES) {
    throw new AuditProofError('the verifier key is not an Ed25519 key (type 0x01 and 32 bytes, canonical base64)');
  }
  const publicKey = material.slice(1);
  const computed = await ed25519KeyId(name, publicKey);
  if (computed !== keyId) {
    throw new AuditProofError(`the verifier key states key ID ${keyId} but its name and key give ${computed}`);
  }
  return { name, keyId, publicKey };
}

/**
 * Verifies a signed checkpoint with `key` and reads it: the note must carry a signature by that key
 * (name and key ID) that verifies over the note's text, the origin must be the key's name, and the
 * only extension line rackseal writes is `timestamp <unix ms>`.
 */
export async function openSignedCheckpoint(note: string, key: NoteVerifierKey): Promise<OpenedCheckpoint> {
  if (typeof note !== 'string' || new TextEncoder().encode(note).length > MAX_NOTE_BYTES) {
    throw new AuditProofError('the checkpoint is not a signed note of at most 128 KiB');
  }
  const split = note.lastIndexOf('\n\n');
  if (split < 0 || !note.endsWith('\n')) {
    throw new AuditProofError('the checkpoint is not a signed note: no blank line before its signatures, or no final newline');
  }
  const text = note.slice(0, split + 1);
  const lines = note.slice(split + 2, -1).split('\n');
  const signatures = lines.map((line) => {
    const space = line.indexOf(' ', SIGNATURE_LINE_PREFIX.length);
    const bytes = space < 0 ? undefined : strictBase64(line.slice(space + 1));
    if (!line.startsWith(SIGNATURE_LINE_PREFIX) || bytes === undefined || bytes.length <= 4) {
      throw new AuditProofError('the checkpoint is not a signed note: a signature line is not "— <key name> <base64 key ID and signature>"');
    }
    return { name: line.slice(SIGNATURE_LINE_PREFIX.length, space), keyId: toHex(bytes.subarray(0, 4)), signature: bytes.slice(4) };
  });
  const mine = signatures.find((s) => s.name === key.name && s.keyId === key.keyId);
  if (mine === undefined) {
    throw new AuditProofError(`the checkpoint has no signature by ${key.name}+${key.keyId} (signed by: ${signatures.map((s) => `${s.name}+${s.keyId}`).join(', ')})`);
  }
  let valid = false;
  if (mine.signature.length === ED25519_SIGNATURE_BYTES) {
    const publicKey = await subtle()
      .importKey('raw', key.publicKey, { name: 'Ed25519' }, false, ['verify'])
      .catch((error: unknown) => {
        throw new AuditProofError(`this browser's WebCrypto cannot verify Ed25519 (${(error as Error).message})`);
      });
    valid = await subtle().verify({ name: 'Ed25519' }, publicKey, mine.signature, new TextEncoder().encode(text));
  }
  if (!valid) {
    throw new AuditProofError(`the signature by ${key.name}+${key.keyId} does not verify: the checkpoint was modified or not signed by that key`);
  }
  return readCheckpoint(text, key.name);
}

/** The checkpoint text (after its signature verified): origin, size, base64 root, `timestamp <ms>`. */
function readCheckpoint(text: string, keyName: string): OpenedCheckpoint {
  const [origin = '', sizeText = '', rootText = '', ...extensions] = text.slice(0, -1).split('\n');
  if (origin !== keyName) {
    throw new AuditProofError(`the checkpoint origin "${origin}" is not the key name "${keyName}"`);
  }
  if (!CANONICAL_DECIMAL.test(sizeText) || !Number.isSafeInteger(Number(sizeText))) {
    throw new AuditProofError(`the checkpoint's tree size "${sizeText}" is not a decimal number without leading zeros`);
  }
  const rootHash = strictBase64(rootText);
  if (rootHash === undefined || rootHash.length !== HASH_BYTES) {
    throw new AuditProofError('the checkpoint\'s root hash is not 32 bytes of canonical base64');
  }
  const [timeLine, ...others] = extensions;
  const digits = timeLine?.startsWith('timestamp ') === true ? timeLine.slice('timestamp '.length) : '';
  if (!CANONICAL_DECIMAL.test(digits) || others.length > 0) {
    throw new AuditProofError('the checkpoint\'s only extension line must be "timestamp <unix ms>"');
  }
  return { origin, size: Number(sizeText), rootHash, time: Number(digits) };
}

/**
 * "Verify inclusion" for record `seq`: everything from the server's answer (`answer`, GET
 * /v1/audit/records/:seq/proof) is checked against the verifier key `vkey` only — the server's own
 * claims (the record's leafHash, the checkpoint's rootHash and treeSize fields) are compared, never
 * believed. Never throws: a step that fails says why, and the steps after it say they were not checked.
 */
export async function verifyRecordInclusion(seq: number, answer: AuditInclusionProofView, vkey: string): Promise<InclusionVerdict> {
  const steps: VerificationStep[] = [];
  const found: { leafHash?: string; computedRoot?: string; checkpointRoot?: string; treeSize?: number; keyId?: string } = {};
  const skipped = (from: VerificationStep['step'][]): void => {
    for (const step of from) {
      steps.push({ step, title: TITLES[step], ok: null, detail: 'not checked: an earlier step failed' });
    }
  };
  const fail = (step: VerificationStep['step'], error: unknown): void => {
    steps.push({ step, title: TITLES[step], ok: false, detail: describe(error) });
  };
  const done = (): InclusionVerdict => ({ verified: steps.length === 5 && steps.every((s) => s.ok === true), steps, ...found });

  let key: NoteVerifierKey;
  try {
    key = await parseVerifierKey(vkey);
    found.keyId = key.keyId;
    steps.push({ step: 'key', title: TITLES.key, ok: true, detail: `Ed25519 key ${key.name}+${key.keyId}, well formed (its key ID is the one its name and key give)` });
  } catch (error) {
    fail('key', error);
    skipped(['signature', 'checkpoint', 'record', 'inclusion']);
    return done();
  }

  let checkpoint: OpenedCheckpoint;
  try {
    checkpoint = await openSignedCheckpoint(String(answer?.checkpoint?.note), key);
    found.treeSize = checkpoint.size;
    found.checkpointRoot = toHex(checkpoint.rootHash);
    steps.push({ step: 'signature', title: TITLES.signature, ok: true, detail: `the Ed25519 signature by ${key.name}+${key.keyId} verifies over the checkpoint` });
  } catch (error) {
    fail('signature', error);
    skipped(['checkpoint', 'record', 'inclusion']);
    return done();
  }

  // The server's unsigned fields must agree with what the signature covers.
  const disagreements = [
    answer.treeSize !== checkpoint.size ? `the proof is for a tree of ${String(answer.treeSize)} leaves` : undefined,
    answer.checkpoint.treeSize !== checkpoint.size ? `the server lists its tree size as ${String(answer.checkpoint.treeSize)}` : undefined,
    answer.checkpoint.rootHash !== found.checkpointRoot ? `the server lists its root as ${String(answer.checkpoint.rootHash)}` : undefined,
  ].filter((d) => d !== undefined);
  if (disagreements.length > 0) {
    fail('checkpoint', new AuditProofError(`the signed checkpoint is of ${checkpoint.size} leaves with root ${found.checkpointRoot}, but ${disagreements.join('; ')}`));
    skipped(['record', 'inclusion']);
    return done();
  }
  steps.push({
    step: 'checkpoint',
    title: TITLES.checkpoint,
    ok: true,
    detail: `${checkpoint.size} records, root ${found.checkpointRoot}, signed at ${new Date(checkpoint.time).toISOString()}`,
  });

  let leaf: Uint8Array<ArrayBuffer>;
  try {
    const record = answer.record;
    if (record?.seq !== seq) {
      throw new AuditProofError(`the server answered with record ${String(record?.seq)}, not ${seq}`);
    }
    leaf = await recordLeafHash({ ...record, seq });
    found.leafHash = toHex(leaf);
    const stated = record.leafHash === found.leafHash ? 'the server states the same' : `the server states ${String(record.leafHash)}`;
    steps.push({ step: 'record', title: TITLES.record, ok: true, detail: `leaf hash ${found.leafHash} recomputed from the record (${stated})` });
  } catch (error) {
    fail('record', error);
    skipped(['inclusion']);
    return done();
  }

  try {
    const proof = Array.isArray(answer.proof) ? answer.proof.map((h, i) => hashFromHex(h, `proof element ${i}`)) : [];
    if (!Array.isArray(answer.proof)) {
      throw new AuditProofError('the proof is not a list of hashes');
    }
    const root = await rootFromInclusionProof(leaf, seq - 1, checkpoint.size, proof);
    found.computedRoot = toHex(root);
    if (!equalBytes(root, checkpoint.rootHash)) {
      throw new AuditProofError(`the proof leads to root ${found.computedRoot}, not the signed root ${found.checkpointRoot}: the record or the proof was changed`);
    }
    steps.push({ step: 'inclusion', title: TITLES.inclusion, ok: true, detail: `${proof.length} hashes lead from leaf ${seq - 1} to root ${found.computedRoot}, the signed root` });
  } catch (error) {
    fail('inclusion', error);
  }
  return done();
}

const TITLES: Record<VerificationStep['step'], string> = {
  key: 'Log verifier key',
  signature: 'Checkpoint signature',
  checkpoint: 'Signed checkpoint',
  record: 'Record leaf hash',
  inclusion: 'Inclusion proof (RFC 9162 §2.1.3.2)',
};

function describe(error: unknown): string {
  return error instanceof AuditProofError ? error.message : `unexpected error: ${(error as Error)?.message ?? String(error)}`;
}
