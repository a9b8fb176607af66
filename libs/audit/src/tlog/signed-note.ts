import { createHash, createPrivateKey, createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { SecretBytes } from '@rackseal/config';

/**
 * Signed notes, C2SP signed-note v1 (c2sp.org/signed-note): a text ending in a newline, a blank
 * line, then one or more lines `— <key name> <base64(4-byte key ID ‖ signature)>`. rackseal signs
 * with Ed25519 (signature type 0x01, RFC 8032) and reads notes strictly (docs/decisions.md, "Audit
 * checkpoints and envelope encryption (issue 11)").
 */

/** What was wrong with a note, a verifier key or a signing key; `problem` is stable for callers and tests. */
export type SignedNoteProblem =
  | 'too-large'
  | 'not-utf8'
  | 'control-character'
  | 'text-without-final-newline'
  | 'no-signature-block'
  | 'malformed-signature-line'
  | 'invalid-key-name'
  | 'malformed-signature'
  | 'too-many-signatures'
  | 'duplicate-signature'
  | 'malformed-verifier-key'
  | 'unsupported-signature-type'
  | 'key-id-mismatch'
  | 'no-known-signature'
  | 'invalid-signature'
  | 'invalid-signing-key';

export class SignedNoteError extends Error {
  constructor(
    readonly problem: SignedNoteProblem,
    message: string,
  ) {
    super(message);
    this.name = 'SignedNoteError';
  }
}

/** U+2014 EM DASH then a space: how every signature line starts (signed-note §Format). */
export const SIGNATURE_LINE_PREFIX = '\u2014 ';

/** Signature type byte of Ed25519 note signatures (signed-note §Signature types). */
export const ED25519_SIGNATURE_TYPE = 0x01;

/**
 * Limits on what a verifier reads (signed-note §Format asks for one and at least 16 signatures).
 * A rackseal checkpoint is about 200 bytes with its one signature; the room left is for witness
 * cosignatures, post-quantum ones included (≈ 3.3 kB per line for ML-DSA-44).
 */
export const MAX_NOTE_BYTES = 128 * 1024;
export const MAX_NOTE_SIGNATURES = 32;

const ED25519_PUBLIC_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;
const KEY_ID_BYTES = 4;

export interface NoteSignature {
  readonly name: string;
  /** The uint32 key ID (big-endian on the wire). */
  readonly keyId: number;
  /** The signature bytes after the key ID. */
  readonly signature: Buffer;
}

export interface SignedNote {
  /** The signed text, final newline included, separating blank line excluded. */
  readonly text: string;
  readonly signatures: readonly NoteSignature[];
}

/** An Ed25519 note verifier, as a verifier key (vkey) describes it. */
export interface NoteVerifier {
  readonly name: string;
  readonly keyId: number;
  /** Raw 32-byte Ed25519 public key (RFC 8032 §5.1.5). */
  readonly publicKey: Buffer;
}

/** A key that signs notes: its name and its Ed25519 private key as PKCS#8 DER (RFC 8410 §7). */
export interface NoteSigner {
  readonly name: string;
  readonly privateKey: SecretBytes;
}

/** A note whose text the `verifiedBy` signatures vouch for; signatures by keys not asked about are left out. */
export interface VerifiedNote {
  readonly text: string;
  readonly verifiedBy: readonly NoteSignature[];
}

/**
 * Key names are non-empty and hold no Unicode space and no `+` (signed-note §Format), nor any
 * control character (none may appear in a note). Unicode spaces are the White_Space property:
 * JavaScript's `\s` is that set without U+0085 (NEL) and with U+FEFF, so NEL is named as well.
 */
export function isValidKeyName(name: string): boolean {
  return name.length > 0 && !/[\s\u0085+]/u.test(name) && controlCharacterAt(name, false) < 0 && isWellFormedText(name);
}

/** key ID = SHA-256(key name ‖ 0x0A ‖ 0x01 ‖ 32-byte public key)[:4] (signed-note §Ed25519 signatures). */
export function ed25519KeyId(name: string, publicKey: Buffer): number {
  checkKeyName(name, 'the key name');
  checkPublicKey(publicKey);
  return createHash('sha256')
    .update(Buffer.from(name, 'utf8'))
    .update(Buffer.from([0x0a, ED25519_SIGNATURE_TYPE]))
    .update(publicKey)
    .digest()
    .readUInt32BE(0);
}

/** The key ID as the vkey and messages write it: 8 lowercase hex digits. */
export function keyIdHex(keyId: number): string {
  return keyId.toString(16).padStart(8, '0');
}

/** `<name>+<hex key ID>+<base64(0x01 ‖ public key)>` (signed-note §Verifier keys). */
export function formatVerifierKey(name: string, publicKey: Buffer): string {
  const keyId = ed25519KeyId(name, publicKey);
  return `${name}+${keyIdHex(keyId)}+${Buffer.concat([Buffer.from([ED25519_SIGNATURE_TYPE]), publicKey]).toString('base64')}`;
}

/** Reads an Ed25519 vkey; the key ID it states must be the one its name and key give. */
export function parseVerifierKey(vkey: string): NoteVerifier {
  // Split at the first two "+": names hold none and the ID is hex, but base64 may hold more.
  const first = vkey.indexOf('+');
  const second = first < 0 ? -1 : vkey.indexOf('+', first + 1);
  if (second < 0) {
    throw new SignedNoteError('malformed-verifier-key', 'a verifier key is <name>+<8 hex digits>+<base64 key>, three parts joined by "+"');
  }
  const name = vkey.slice(0, first);
  const idText = vkey.slice(first + 1, second);
  const keyText = vkey.slice(second + 1);
  checkKeyName(name, 'the verifier key name');
  if (!/^[0-9a-f]{8}$/.test(idText)) {
    throw new SignedNoteError('malformed-verifier-key', `the verifier key ID "${idText}" is not 8 lowercase hex digits`);
  }
  const material = strictBase64(keyText);
  if (material === undefined || material.length === 0) {
    throw new SignedNoteError('malformed-verifier-key', 'the verifier key material is not canonical base64');
  }
  if (material[0] !== ED25519_SIGNATURE_TYPE) {
    throw new SignedNoteError(
      'unsupported-signature-type',
      `the verifier key has signature type 0x${(material[0] ?? 0).toString(16).padStart(2, '0')}; only Ed25519 (0x01) is supported`,
    );
  }
  const publicKey = material.subarray(1);
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new SignedNoteError('malformed-verifier-key', `the verifier key's Ed25519 public key is ${publicKey.length} bytes, not 32`);
  }
  try {
    ed25519PublicKey(publicKey);
  } catch {
    throw new SignedNoteError('malformed-verifier-key', 'the verifier key holds no usable Ed25519 public key');
  }
  const keyId = ed25519KeyId(name, publicKey);
  if (keyIdHex(keyId) !== idText) {
    throw new SignedNoteError(
      'key-id-mismatch',
      `the verifier key states key ID ${idText} but its name and key give ${keyIdHex(keyId)}`,
    );
  }
  return { name, keyId, publicKey: Buffer.from(publicKey) };
}

/** Splits a note into its text and signatures, checking every rule of the format; verifies nothing. */
export function parseSignedNote(note: string | Buffer): SignedNote {
  const message = noteText(note);
  const split = message.lastIndexOf('\n\n');
  if (split < 0) {
    throw new SignedNoteError('no-signature-block', 'the note has no blank line before its signatures');
  }
  const text = message.slice(0, split + 1);
  const block = message.slice(split + 2);
  if (block.length === 0) {
    throw new SignedNoteError('no-signature-block', 'the note has no signature lines after its last blank line');
  }
  if (!block.endsWith('\n')) {
    throw new SignedNoteError('malformed-signature-line', 'the last signature line does not end with a newline');
  }
  const lines = block.slice(0, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES) {
    throw new SignedNoteError('too-many-signatures', `the note has ${lines.length} signatures; at most ${MAX_NOTE_SIGNATURES} are read`);
  }
  const seen = new Set<string>();
  const signatures = lines.map((line, i) => {
    const signature = parseSignatureLine(line, i + 1);
    const key = `${signature.name}+${keyIdHex(signature.keyId)}`;
    if (seen.has(key)) {
      throw new SignedNoteError('duplicate-signature', `signature line ${i + 1}: the note is signed twice by ${key}`);
    }
    seen.add(key);
    return signature;
  });
  return { text, signatures };
}

/** Writes a note: its text, a blank line, one line per signature. The result parses back to `note`. */
export function formatSignedNote(note: SignedNote): string {
  checkText(note.text);
  if (note.signatures.length === 0) {
    throw new SignedNoteError('no-signature-block', 'a signed note needs at least one signature');
  }
  const lines = note.signatures.map((s) => {
    checkKeyName(s.name, 'the signature key name');
    if (!Number.isInteger(s.keyId) || s.keyId < 0 || s.keyId > 0xffffffff) {
      throw new SignedNoteError('malformed-signature', `the key ID of ${s.name}'s signature is not a uint32`);
    }
    const bytes = Buffer.alloc(KEY_ID_BYTES + s.signature.length);
    bytes.writeUInt32BE(s.keyId, 0);
    s.signature.copy(bytes, KEY_ID_BYTES);
    return `${SIGNATURE_LINE_PREFIX}${s.name} ${bytes.toString('base64')}\n`;
  });
  const formatted = `${note.text}\n${lines.join('')}`;
  parseSignedNote(formatted);
  return formatted;
}

/** Signs `text` (ending in a newline) with Ed25519 and writes the signed note. */
export function signNote(text: string, signer: NoteSigner): string {
  checkText(text);
  checkKeyName(signer.name, 'the signer name');
  const privateKey = ed25519PrivateKey(signer.privateKey);
  const publicKey = rawPublicKey(privateKey);
  const signature = sign(null, Buffer.from(text, 'utf8'), privateKey);
  return formatSignedNote({ text, signatures: [{ name: signer.name, keyId: ed25519KeyId(signer.name, publicKey), signature }] });
}

/**
 * Opens a note for the given verifiers (signed-note §Signatures): signatures by other keys (a
 * different name or key ID) are ignored; a signature by a given key that fails to verify refuses
 * the whole note; a note no given key has signed is refused.
 */
export function verifyNote(note: string | Buffer, verifiers: NoteVerifier | readonly NoteVerifier[]): VerifiedNote {
  const parsed = parseSignedNote(note);
  const known = Array.isArray(verifiers) ? (verifiers as readonly NoteVerifier[]) : [verifiers as NoteVerifier];
  const text = Buffer.from(parsed.text, 'utf8');
  const verifiedBy: NoteSignature[] = [];
  for (const signature of parsed.signatures) {
    const verifier = known.find((v) => v.name === signature.name && v.keyId === signature.keyId);
    if (verifier === undefined) {
      continue;
    }
    if (!ed25519Verifies(text, verifier.publicKey, signature.signature)) {
      throw new SignedNoteError(
        'invalid-signature',
        `the signature by ${signature.name}+${keyIdHex(signature.keyId)} does not verify: the note was modified or not signed by that key`,
      );
    }
    verifiedBy.push(signature);
  }
  if (verifiedBy.length === 0) {
    const wanted = known.map((v) => `${v.name}+${keyIdHex(v.keyId)}`).join(', ') || 'none';
    const found = parsed.signatures.map((s) => `${s.name}+${keyIdHex(s.keyId)}`).join(', ');
    throw new SignedNoteError('no-known-signature', `the note has no signature by a known key (known: ${wanted}; signed by: ${found})`);
  }
  return { text: parsed.text, verifiedBy };
}

/** The raw 32-byte public key of an Ed25519 PKCS#8 private key. */
export function ed25519PublicKeyOf(privateKey: SecretBytes): Buffer {
  return rawPublicKey(ed25519PrivateKey(privateKey));
}

function parseSignatureLine(line: string, number: number): NoteSignature {
  if (!line.startsWith(SIGNATURE_LINE_PREFIX)) {
    throw new SignedNoteError('malformed-signature-line', `signature line ${number} does not start with an em dash (U+2014) and a space`);
  }
  const rest = line.slice(SIGNATURE_LINE_PREFIX.length);
  const space = rest.indexOf(' ');
  if (space < 0) {
    throw new SignedNoteError('malformed-signature-line', `signature line ${number} is not "— <key name> <base64 signature>"`);
  }
  const name = rest.slice(0, space);
  if (!isValidKeyName(name)) {
    throw new SignedNoteError('invalid-key-name', `signature line ${number}: the key name is empty or holds a space or "+"`);
  }
  const bytes = strictBase64(rest.slice(space + 1));
  if (bytes === undefined) {
    throw new SignedNoteError('malformed-signature', `signature line ${number}: the signature is not canonical base64`);
  }
  if (bytes.length <= KEY_ID_BYTES) {
    throw new SignedNoteError('malformed-signature', `signature line ${number}: the signature is ${bytes.length} bytes, no more than its 4-byte key ID`);
  }
  return { name, keyId: bytes.readUInt32BE(0), signature: Buffer.from(bytes.subarray(KEY_ID_BYTES)) };
}

/** The note as a string, after the size, UTF-8 and control-character rules (signed-note §Format). */
function noteText(note: string | Buffer): string {
  const byteLength = typeof note === 'string' ? Buffer.byteLength(note, 'utf8') : note.length;
  if (byteLength > MAX_NOTE_BYTES) {
    throw new SignedNoteError('too-large', `the note is ${byteLength} bytes; at most ${MAX_NOTE_BYTES} are read`);
  }
  let text: string;
  if (typeof note === 'string') {
    if (!isWellFormedText(note)) {
      throw new SignedNoteError('not-utf8', 'the note holds an unpaired UTF-16 surrogate, which has no UTF-8 encoding');
    }
    text = note;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(note);
    } catch {
      throw new SignedNoteError('not-utf8', 'the note is not valid UTF-8');
    }
  }
  const control = controlCharacterAt(text, true);
  if (control >= 0) {
    throw new SignedNoteError(
      'control-character',
      `the note holds control character U+${text.charCodeAt(control).toString(16).padStart(4, '0').toUpperCase()} at offset ${control}`,
    );
  }
  return text;
}

function checkText(text: string): void {
  noteText(text);
  if (!text.endsWith('\n')) {
    throw new SignedNoteError('text-without-final-newline', 'the note text must end with a newline');
  }
}

function checkKeyName(name: string, what: string): void {
  if (!isValidKeyName(name)) {
    throw new SignedNoteError('invalid-key-name', `${what} must be non-empty, without spaces, "+" or control characters`);
  }
}

function checkPublicKey(publicKey: Buffer): void {
  if (publicKey.length !== ED25519_PUBLIC_KEY_BYTES) {
    throw new SignedNoteError('malformed-verifier-key', `an Ed25519 public key is 32 bytes, not ${publicKey.length}`);
  }
}

/** Standard base64 (RFC 4648 §4) with padding, and only its one canonical spelling of the bytes. */
function strictBase64(text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    return undefined;
  }
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** Index of the first ASCII control character (below U+0020) other than an allowed newline, or -1. */
function controlCharacterAt(text: string, newlineAllowed: boolean): number {
  for (let i = 0; i < text.length; i += 1) {
    const c = text.charCodeAt(i);
    if (c < 0x20 && !(newlineAllowed && c === 0x0a)) {
      return i;
    }
  }
  return -1;
}

function isWellFormedText(text: string): boolean {
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(text);
}

function ed25519PrivateKey(privateKey: SecretBytes): KeyObject {
  if (!(privateKey instanceof SecretBytes)) {
    throw new SignedNoteError('invalid-signing-key', 'the signing key must be given as SecretBytes (PKCS#8 DER)');
  }
  const der = privateKey.reveal();
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } catch {
    throw new SignedNoteError('invalid-signing-key', 'the signing key is not a PKCS#8 DER private key');
  } finally {
    der.fill(0);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new SignedNoteError('invalid-signing-key', `the signing key is ${key.asymmetricKeyType ?? 'unknown'}, not Ed25519`);
  }
  return key;
}

function rawPublicKey(privateKey: KeyObject): Buffer {
  const jwk = createPublicKey(privateKey).export({ format: 'jwk' });
  return Buffer.from(jwk.x ?? '', 'base64url');
}

function ed25519PublicKey(raw: Buffer): KeyObject {
  checkPublicKey(raw);
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

function ed25519Verifies(text: Buffer, publicKey: Buffer, signature: Buffer): boolean {
  if (signature.length !== ED25519_SIGNATURE_BYTES) {
    return false;
  }
  try {
    return verify(null, text, ed25519PublicKey(publicKey), signature);
  } catch {
    return false;
  }
}
