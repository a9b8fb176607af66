// Single files of libs/node-identity: boot unlock reads identity.json (docs/decisions.md "Boot unlock
// loads single files").
import { checkEkPubHash, checkRegistrationId, NODE_CREDENTIAL_ID_PATTERN } from '@rackseal/node-identity/identifiers';
import { NodeIdentityInputError } from '@rackseal/node-identity/node-identity-errors';

/**
 * identity.json: what the agent knows about its enrollment that is not secret: the server it
 * enrolled with, the ids the server gave it, the hash of its EK public key and when. The node
 * credential itself is never here (it is sealed by the TPM, in its own file). Version 1:
 *
 *   { "version": 1, "serverUrl": "https://…", "machineId": "…", "registrationId": "…",
 *     "credentialId": "…", "ekPubHash": "<64 hex>", "enrolledAt": "2026-01-02T03:04:05.000Z" }
 *
 * Parsing is strict: exactly these members, each of its form; anything else is refused by name.
 */
export const IDENTITY_VERSION = 1;

export interface NodeIdentity {
  readonly serverUrl: string;
  readonly machineId: string;
  /** The registration that enrolled (or last re-attested) the machine; the credential is derived with it. */
  readonly registrationId: string;
  /** The node credential's public ID (libs/node-identity: 32 lower-case hex digits); the key is sealed. */
  readonly credentialId: string;
  /** SHA-256 of the EK public key (libs/tpm2 ekPubHash), lowercase hex. */
  readonly ekPubHash: string;
  /** ISO 8601 UTC with milliseconds, as Date.prototype.toISOString writes it. */
  readonly enrolledAt: string;
}

/** identity.json (or an identity about to be written) is not version-1 identity; `reason` says why. */
export class IdentityFormatError extends Error {
  constructor(readonly reason: string) {
    super(`node identity: ${reason}`);
    this.name = 'IdentityFormatError';
  }
}

const MEMBERS = ['version', 'serverUrl', 'machineId', 'registrationId', 'credentialId', 'ekPubHash', 'enrolledAt'] as const;

/** The machine's id as the server issues it (a UUID today): printable, no spaces, bounded. */
const MACHINE_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const MAX_URL = 2048;

function text(value: unknown, member: string): string {
  if (typeof value !== 'string') {
    throw new IdentityFormatError(`${member} must be a string, not ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

function checkServerUrl(value: unknown): string {
  const url = text(value, 'serverUrl');
  let parsed: URL;
  try {
    if (url.length > MAX_URL) {
      throw new Error('too long');
    }
    parsed = new URL(url);
  } catch {
    throw new IdentityFormatError(`serverUrl is not a URL of at most ${MAX_URL} characters`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') {
    throw new IdentityFormatError(`serverUrl must be http(s), not ${parsed.protocol}`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    // A password in a URL would be a secret in clear in the state dir.
    throw new IdentityFormatError('serverUrl must not carry a user name or password');
  }
  return url;
}

function checkPattern(value: unknown, member: string, pattern: RegExp, what: string): string {
  const s = text(value, member);
  if (!pattern.test(s)) {
    throw new IdentityFormatError(`${member} is not ${what}`);
  }
  return s;
}

/** A value libs/node-identity checks (the same spelling the credential derivation insists on). */
function checkWith(value: unknown, member: string, check: (s: string) => string): string {
  const s = text(value, member);
  try {
    return check(s);
  } catch (error) {
    if (error instanceof NodeIdentityInputError) {
      throw new IdentityFormatError(`${member} is not valid: ${error.message}`);
    }
    throw error;
  }
}

function checkEnrolledAt(value: unknown): string {
  const s = checkPattern(value, 'enrolledAt', ISO_UTC, 'an ISO 8601 UTC time like 2026-01-02T03:04:05.000Z');
  const time = new Date(s);
  if (Number.isNaN(time.getTime()) || time.toISOString() !== s) {
    throw new IdentityFormatError(`enrolledAt ${s} is not a real time`);
  }
  return s;
}

/** Checks every member; used on parse and before a write, so the agent never writes what it would refuse. */
export function checkIdentity(candidate: unknown): NodeIdentity {
  if (typeof candidate !== 'object' || candidate === null || Array.isArray(candidate)) {
    throw new IdentityFormatError('not a JSON object');
  }
  const record = candidate as Record<string, unknown>;
  const unknown = Object.keys(record).filter((key) => !(MEMBERS as readonly string[]).includes(key));
  if (unknown.length > 0) {
    throw new IdentityFormatError(`unknown member ${JSON.stringify(unknown[0])}`);
  }
  const missing = MEMBERS.filter((key) => !(key in record));
  if (missing.length > 0) {
    throw new IdentityFormatError(`member ${missing[0]} is missing`);
  }
  if (record.version !== IDENTITY_VERSION) {
    throw new IdentityFormatError(`version ${JSON.stringify(record.version)} is not supported (this agent reads version ${IDENTITY_VERSION})`);
  }
  return {
    serverUrl: checkServerUrl(record.serverUrl),
    machineId: checkPattern(record.machineId, 'machineId', MACHINE_ID, 'an id (1 to 128 of A-Z a-z 0-9 . _ : -)'),
    registrationId: checkWith(record.registrationId, 'registrationId', checkRegistrationId),
    credentialId: checkPattern(record.credentialId, 'credentialId', NODE_CREDENTIAL_ID_PATTERN, 'a credential ID (32 lower-case hex digits)'),
    ekPubHash: checkWith(record.ekPubHash, 'ekPubHash', checkEkPubHash),
    enrolledAt: checkEnrolledAt(record.enrolledAt),
  };
}

export function parseIdentity(bytes: Buffer): NodeIdentity {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw new IdentityFormatError('not UTF-8 JSON');
  }
  return checkIdentity(json);
}

/** Version 1 JSON, members in a fixed order, one per line. */
export function serializeIdentity(identity: NodeIdentity): Buffer {
  const checked = checkIdentity({ version: IDENTITY_VERSION, ...identity });
  return Buffer.from(`${JSON.stringify({ version: IDENTITY_VERSION, ...checked }, null, 2)}\n`, 'utf8');
}
