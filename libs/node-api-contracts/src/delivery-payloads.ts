/**
 * What a delivery carries once unwrapped (issue 14 items 1 and 3): the plaintext the control plane
 * wraps to a machine's TPM for one secret version, and the agent parses before it installs anything.
 * It is UTF-8 JSON (RFC 8259), one object per kind, with no field beyond those below:
 *
 *   tls             {"format":1,"kind":"tls","secret":…,"keyPem":…,"certPem":…,"chainPem":…}
 *   kubelet-client  {"format":1,"kind":"kubelet-client","secret":…,"keyPem":…,"certPem":…,"kubeconfig":…}
 *   opaque          {"format":1,"kind":"opaque","secret":…,"value":<base64>}
 *   disk            {"format":1,"kind":"disk","secret":…,"key":<base64>,"generation":N}
 *
 * keyPem is one PKCS#8 "PRIVATE KEY" block (RFC 5958, RFC 7468 §10); certPem one "CERTIFICATE"
 * block (RFC 7468 §5), the machine's; chainPem the issuing CA's certificate(s), one block or more;
 * kubeconfig the kubelet.conf libs/secrets renders (it names the PEM by path and holds no secret).
 * `secret` is the secret's name: inside the envelope it is authenticated with the payload, so the
 * agent's delivery loop installs a payload only where its own name says (the mailbox's label is
 * not authenticated: a relabelled delivery is refused). Optional in the parser, for payloads made
 * outside a delivery (a token's envelope), and required by the delivery loop.
 * Base64 is RFC 4648 §4, padded. `generation` orders a disk's keys: a generation the disk already
 * holds, or an older one, is not applied again.
 *
 * The library depends on no other rackseal library, so the caller says how secret bytes are held
 * (the agent: SecretBytes); the parser's own copies are zeroed, and no refusal quotes the payload.
 */

/** The payload layout this file describes. */
export const DELIVERY_PAYLOAD_FORMAT = 1;

/** The kinds of secret a delivery carries (as @rackseal/api-contracts SECRET_KINDS). */
export const DELIVERY_PAYLOAD_KINDS = ['tls', 'kubelet-client', 'opaque', 'disk'] as const;
export type DeliveryPayloadKind = (typeof DELIVERY_PAYLOAD_KINDS)[number];

/** Bounds of a payload, checked before anything else is read. */
export const DELIVERY_PAYLOAD_LIMITS = {
  /** The whole JSON text. */
  payloadBytes: 256 * 1024,
  /** One PEM text (a key, a certificate, a chain). */
  pemChars: 64 * 1024,
  /** kubelet.conf: the CA inline and a few names. */
  kubeconfigChars: 64 * 1024,
  /** An opaque value, decoded (as @rackseal/api-contracts MAX_OPAQUE_BYTES). */
  opaqueBytes: 64 * 1024,
  /** A disk key, decoded (as @rackseal/api-contracts DISK_KEY_SIZES). */
  diskKeyBytes: [32, 64] as readonly number[],
} as const;

/** The JSON as sent: every field a string but `format` and `generation`. */
export type DeliveryPayloadJson =
  | { readonly format: 1; readonly kind: 'tls'; readonly secret?: string; readonly keyPem: string; readonly certPem: string; readonly chainPem: string }
  | { readonly format: 1; readonly kind: 'kubelet-client'; readonly secret?: string; readonly keyPem: string; readonly certPem: string; readonly kubeconfig: string }
  | { readonly format: 1; readonly kind: 'opaque'; readonly secret?: string; readonly value: string }
  | { readonly format: 1; readonly kind: 'disk'; readonly secret?: string; readonly key: string; readonly generation: number };

/** A parsed payload; `S` holds secret bytes (the key PEM's UTF-8, the opaque value, the disk key). */
export type DeliveryPayload<S> = (
  | { readonly kind: 'tls'; readonly keyPem: S; readonly certPem: string; readonly chainPem: string }
  | { readonly kind: 'kubelet-client'; readonly keyPem: S; readonly certPem: string; readonly kubeconfig: string }
  | { readonly kind: 'opaque'; readonly value: S }
  | { readonly kind: 'disk'; readonly key: S; readonly generation: number }
) & { readonly secret?: string };

/** A payload refused: `field` names where (`keyPem`, or `payload` for the whole), never what it held. */
export class DeliveryPayloadError extends Error {
  readonly code = 'delivery.invalid-payload';

  constructor(
    readonly field: string,
    reason: string,
  ) {
    super(`delivery payload: ${field}: ${reason}`);
    this.name = 'DeliveryPayloadError';
  }
}

const FIELDS: Record<DeliveryPayloadKind, readonly string[]> = {
  tls: ['keyPem', 'certPem', 'chainPem'],
  'kubelet-client': ['keyPem', 'certPem', 'kubeconfig'],
  opaque: ['value'],
  disk: ['key', 'generation'],
};

/** The JSON text of a payload: what the control plane wraps. */
export function encodeDeliveryPayload(payload: DeliveryPayloadJson): Buffer {
  return Buffer.from(JSON.stringify(payload), 'utf8');
}

/**
 * Parses an unwrapped payload strictly: UTF-8 JSON object, `format` 1, a known kind, exactly its
 * fields, each of its shape (see the file comment). `secret` receives each secret field's bytes
 * and must copy them: the buffer it is given is zeroed afterwards.
 */
export function parseDeliveryPayload<S>(bytes: Uint8Array, secret: (bytes: Buffer) => S): DeliveryPayload<S> {
  if (bytes.length > DELIVERY_PAYLOAD_LIMITS.payloadBytes) {
    throw new DeliveryPayloadError('payload', `larger than ${DELIVERY_PAYLOAD_LIMITS.payloadBytes} bytes`);
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DeliveryPayloadError('payload', 'not UTF-8');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    // JSON.parse's own message quotes the text: not repeated.
    throw new DeliveryPayloadError('payload', 'not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new DeliveryPayloadError('payload', 'not a JSON object');
  }
  const o = body as Record<string, unknown>;
  if (o.format !== DELIVERY_PAYLOAD_FORMAT) {
    throw new DeliveryPayloadError('format', `must be ${DELIVERY_PAYLOAD_FORMAT} (a payload of another format is for another agent version)`);
  }
  if (typeof o.kind !== 'string' || !(DELIVERY_PAYLOAD_KINDS as readonly string[]).includes(o.kind)) {
    throw new DeliveryPayloadError('kind', `must be one of ${DELIVERY_PAYLOAD_KINDS.join(', ')}`);
  }
  const kind = o.kind as DeliveryPayloadKind;
  const allowed = ['format', 'kind', 'secret', ...FIELDS[kind]];
  const unknown = Object.keys(o).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    throw new DeliveryPayloadError(safeName(unknown), `is not a field of the ${kind} payload (fields: ${FIELDS[kind].join(', ')})`);
  }
  if (o.secret !== undefined && (typeof o.secret !== 'string' || !/^[\x21-\x7e]{1,63}$/.test(o.secret))) {
    throw new DeliveryPayloadError('secret', 'must be a secret name (1-63 printable ASCII characters)');
  }
  const named = o.secret === undefined ? {} : { secret: o.secret };
  return { ...payloadOf(kind, o, secret), ...named };
}

function payloadOf<S>(kind: DeliveryPayloadKind, o: Record<string, unknown>, secret: (bytes: Buffer) => S): DeliveryPayload<S> {
  switch (kind) {
    case 'tls':
      return { kind, keyPem: privateKeyPem(o.keyPem, 'keyPem', secret), certPem: certificatesPem(o.certPem, 'certPem', 'one'), chainPem: certificatesPem(o.chainPem, 'chainPem', 'some') };
    case 'kubelet-client':
      return { kind, keyPem: privateKeyPem(o.keyPem, 'keyPem', secret), certPem: certificatesPem(o.certPem, 'certPem', 'one'), kubeconfig: kubeconfig(o.kubeconfig) };
    case 'opaque':
      return { kind, value: base64Secret(o.value, 'value', (n) => n >= 1 && n <= DELIVERY_PAYLOAD_LIMITS.opaqueBytes, `1-${DELIVERY_PAYLOAD_LIMITS.opaqueBytes} bytes`, secret) };
    case 'disk': {
      if (typeof o.generation !== 'number' || !Number.isSafeInteger(o.generation) || o.generation < 1) {
        throw new DeliveryPayloadError('generation', 'must be an integer of at least 1');
      }
      const sizes = DELIVERY_PAYLOAD_LIMITS.diskKeyBytes;
      return { kind, key: base64Secret(o.key, 'key', (n) => sizes.includes(n), `${sizes.join(' or ')} bytes`, secret), generation: o.generation };
    }
  }
}

/** A field name from the payload, shown only when it is a plain identifier. */
function safeName(name: string): string {
  return /^[A-Za-z][A-Za-z0-9_-]{0,40}$/.test(name) ? name : '(a field name that is not an identifier)';
}

/** Standard padded base64 (RFC 4648 §4) whose decoded length `fits`; the decoded copy is zeroed after `secret`. */
function base64Secret<S>(value: unknown, field: string, fits: (n: number) => boolean, size: string, secret: (bytes: Buffer) => S): S {
  if (typeof value !== 'string' || value.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) {
    throw new DeliveryPayloadError(field, 'must be standard base64 (RFC 4648 §4, padded)');
  }
  const bytes = Buffer.from(value, 'base64');
  try {
    if (!fits(bytes.length)) {
      throw new DeliveryPayloadError(field, `must decode to ${size}`);
    }
    return secret(bytes);
  } finally {
    bytes.fill(0);
  }
}

/** One PEM block (RFC 7468 §3, LF line ends, base64 lines of at most 76 characters). */
const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\n((?:[A-Za-z0-9+/=]{1,76}\n)+)-----END \1-----\n/y;

/** The labels of a PEM text made only of whole blocks, or undefined when it is anything else. */
function pemLabels(text: string): string[] | undefined {
  const labels: string[] = [];
  PEM_BLOCK.lastIndex = 0;
  while (PEM_BLOCK.lastIndex < text.length) {
    const match = PEM_BLOCK.exec(text);
    if (match === null) {
      return undefined;
    }
    const base64 = match[2]!.replace(/\n/g, '');
    if (base64.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(base64)) {
      return undefined;
    }
    labels.push(match[1]!);
  }
  return labels;
}

function pemText(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new DeliveryPayloadError(field, 'must be a non-empty string of PEM');
  }
  if (value.length > DELIVERY_PAYLOAD_LIMITS.pemChars) {
    throw new DeliveryPayloadError(field, `longer than ${DELIVERY_PAYLOAD_LIMITS.pemChars} characters`);
  }
  return value;
}

function privateKeyPem<S>(value: unknown, field: string, secret: (bytes: Buffer) => S): S {
  const labels = pemLabels(pemText(value, field));
  if (labels === undefined || labels.length !== 1 || labels[0] !== 'PRIVATE KEY') {
    throw new DeliveryPayloadError(field, 'must be exactly one PEM block labelled PRIVATE KEY (PKCS#8, RFC 7468 §10), LF line ends');
  }
  const bytes = Buffer.from(value as string, 'utf8');
  try {
    return secret(bytes);
  } finally {
    bytes.fill(0);
  }
}

function certificatesPem(value: unknown, field: string, count: 'one' | 'some'): string {
  const labels = pemLabels(pemText(value, field));
  if (labels === undefined || labels.length === 0 || labels.some((label) => label !== 'CERTIFICATE') || (count === 'one' && labels.length !== 1)) {
    throw new DeliveryPayloadError(field, `must be ${count === 'one' ? 'exactly one PEM block' : 'one or more PEM blocks'} labelled CERTIFICATE (RFC 7468 §5), LF line ends`);
  }
  return value as string;
}

function kubeconfig(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\0')) {
    throw new DeliveryPayloadError('kubeconfig', 'must be a non-empty string without NUL');
  }
  if (value.length > DELIVERY_PAYLOAD_LIMITS.kubeconfigChars) {
    throw new DeliveryPayloadError('kubeconfig', `longer than ${DELIVERY_PAYLOAD_LIMITS.kubeconfigChars} characters`);
  }
  return value;
}
