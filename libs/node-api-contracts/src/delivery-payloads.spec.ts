import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { DELIVERY_PAYLOAD_LIMITS, DeliveryPayloadError, type DeliveryPayloadJson, encodeDeliveryPayload, parseDeliveryPayload } from './delivery-payloads';

/** A block of `label` over `der`, 64 characters a line as OpenSSL writes it. */
const pem = (label: string, der: Buffer): string => `-----BEGIN ${label}-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n?$/, '\n')}-----END ${label}-----\n`;

const KEY_PEM = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const CERT_PEM = pem('CERTIFICATE', randomBytes(300));
const CA_PEM = pem('CERTIFICATE', randomBytes(280));
const DISK_KEY = randomBytes(32);
const OPAQUE = Buffer.from('s3cr3t-value\n');

const VALID: Record<string, DeliveryPayloadJson> = {
  tls: { format: 1, kind: 'tls', keyPem: KEY_PEM, certPem: CERT_PEM, chainPem: CA_PEM + CA_PEM },
  'kubelet-client': { format: 1, kind: 'kubelet-client', keyPem: KEY_PEM, certPem: CERT_PEM, kubeconfig: 'apiVersion: v1\nkind: Config\n' },
  opaque: { format: 1, kind: 'opaque', value: OPAQUE.toString('base64') },
  disk: { format: 1, kind: 'disk', key: DISK_KEY.toString('base64'), generation: 3 },
};

/** Holds the secret bytes the way the agent's SecretBytes does: a copy. */
const hold = (bytes: Buffer): Buffer => Buffer.from(bytes);

/** Refused: a Buffer is sent as it is, anything else as its JSON. */
const refusal = (payload: unknown): DeliveryPayloadError => {
  const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(JSON.stringify(payload));
  try {
    parseDeliveryPayload(bytes, hold);
  } catch (error) {
    expect(error).toBeInstanceOf(DeliveryPayloadError);
    return error as DeliveryPayloadError;
  }
  throw new Error('accepted');
};

describe('delivery payloads (issue 14 item 3)', () => {
  it('reads each kind back from its encoding, secret fields through the holder', () => {
    expect(parseDeliveryPayload(encodeDeliveryPayload(VALID.tls!), hold)).toEqual({ kind: 'tls', keyPem: Buffer.from(KEY_PEM), certPem: CERT_PEM, chainPem: CA_PEM + CA_PEM });
    expect(parseDeliveryPayload(encodeDeliveryPayload(VALID['kubelet-client']!), hold)).toEqual({ kind: 'kubelet-client', keyPem: Buffer.from(KEY_PEM), certPem: CERT_PEM, kubeconfig: 'apiVersion: v1\nkind: Config\n' });
    expect(parseDeliveryPayload(encodeDeliveryPayload(VALID.opaque!), hold)).toEqual({ kind: 'opaque', value: OPAQUE });
    expect(parseDeliveryPayload(encodeDeliveryPayload(VALID.disk!), hold)).toEqual({ kind: 'disk', key: DISK_KEY, generation: 3 });
  });

  it('carries the secret\'s name when given (what the delivery loop checks against the mailbox\'s label), refusing one that is not a plain name', () => {
    expect(parseDeliveryPayload(encodeDeliveryPayload({ ...VALID.opaque!, secret: 'app-token' }), hold)).toEqual({ kind: 'opaque', value: OPAQUE, secret: 'app-token' });
    for (const bad of ['', 'a b', 'x'.repeat(64), 'caf\u00e9', 'nul\u0000', 7]) {
      expect(refusal({ ...VALID.disk!, secret: bad }).field).toBe('secret');
    }
  });

  it('zeroes its own copy of a secret after handing it over', () => {
    let given: Buffer | undefined;
    parseDeliveryPayload(encodeDeliveryPayload(VALID.disk!), (bytes) => {
      given = bytes;
      return 'held';
    });
    expect(given!.equals(Buffer.alloc(32))).toBe(true);
  });

  const with_ = (kind: string, change: Record<string, unknown>): unknown => ({ ...VALID[kind], ...change });
  const without = (kind: string, field: string): unknown => Object.fromEntries(Object.entries(VALID[kind]!).filter(([k]) => k !== field));

  it.each<[string, unknown, string, RegExp]>([
    ['too large', Buffer.alloc(DELIVERY_PAYLOAD_LIMITS.payloadBytes + 1, 0x20), 'payload', /larger than/],
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d]), 'payload', /not UTF-8/],
    ['not JSON', Buffer.from('{"kind":"opaque","value":"c2VjcmV0"'), 'payload', /^delivery payload: payload: not JSON$/],
    ['an array', [VALID.opaque], 'payload', /not a JSON object/],
    ['null', null, 'payload', /not a JSON object/],
    ['no format', without('opaque', 'format'), 'format', /must be 1/],
    ['format 2', with_('opaque', { format: 2 }), 'format', /must be 1/],
    ['format "1"', with_('opaque', { format: '1' }), 'format', /must be 1/],
    ['unknown kind', with_('opaque', { kind: 'ssh' }), 'kind', /one of tls, kubelet-client, opaque, disk/],
    ['a field of another kind', with_('opaque', { generation: 1 }), 'generation', /not a field of the opaque payload/],
    ['an odd field name', with_('opaque', { 'x y': 1 }), '(a field name that is not an identifier)', /not a field/],
    ['tls: key missing', without('tls', 'keyPem'), 'keyPem', /PEM/],
    ['tls: key empty', with_('tls', { keyPem: '' }), 'keyPem', /non-empty/],
    ['tls: key too long', with_('tls', { keyPem: 'x'.repeat(DELIVERY_PAYLOAD_LIMITS.pemChars + 1) }), 'keyPem', /longer than/],
    ['tls: key an EC PRIVATE KEY (SEC1)', with_('tls', { keyPem: KEY_PEM.replace(/PRIVATE KEY/g, 'EC PRIVATE KEY') }), 'keyPem', /PRIVATE KEY \(PKCS#8/],
    ['tls: two keys', with_('tls', { keyPem: KEY_PEM + KEY_PEM }), 'keyPem', /exactly one/],
    ['tls: key with CRLF', with_('tls', { keyPem: KEY_PEM.replace(/\n/g, '\r\n') }), 'keyPem', /LF line ends/],
    ['tls: key with text before', with_('tls', { keyPem: `Bag Attributes\n${KEY_PEM}` }), 'keyPem', /exactly one/],
    ['tls: key with no final newline', with_('tls', { keyPem: KEY_PEM.trimEnd() }), 'keyPem', /exactly one/],
    ['tls: key base64 broken', with_('tls', { keyPem: KEY_PEM.replace(/\n([A-Za-z0-9+/])/, '\n$1$1') }), 'keyPem', /exactly one/],
    ['tls: mismatched END label', with_('tls', { keyPem: KEY_PEM.replace('END PRIVATE KEY', 'END CERTIFICATE') }), 'keyPem', /exactly one/],
    ['tls: cert is a key', with_('tls', { certPem: KEY_PEM }), 'certPem', /exactly one PEM block labelled CERTIFICATE/],
    ['tls: two certs', with_('tls', { certPem: CERT_PEM + CA_PEM }), 'certPem', /exactly one/],
    ['tls: chain empty', with_('tls', { chainPem: '' }), 'chainPem', /non-empty/],
    ['tls: chain holds a key', with_('tls', { chainPem: CA_PEM + KEY_PEM }), 'chainPem', /one or more PEM blocks labelled CERTIFICATE/],
    ['tls: chain a number', with_('tls', { chainPem: 1 }), 'chainPem', /non-empty string/],
    ['kubelet: no kubeconfig', without('kubelet-client', 'kubeconfig'), 'kubeconfig', /non-empty string/],
    ['kubelet: kubeconfig with NUL', with_('kubelet-client', { kubeconfig: 'a\0b' }), 'kubeconfig', /without NUL/],
    ['kubelet: kubeconfig too long', with_('kubelet-client', { kubeconfig: 'a'.repeat(DELIVERY_PAYLOAD_LIMITS.kubeconfigChars + 1) }), 'kubeconfig', /longer than/],
    ['opaque: value empty', with_('opaque', { value: '' }), 'value', /1-65536 bytes/],
    ['opaque: value unpadded', with_('opaque', { value: 'YWJj ZA' }), 'value', /base64/],
    ['opaque: value base64url', with_('opaque', { value: '-_-_' }), 'value', /base64/],
    ['opaque: value too large', with_('opaque', { value: Buffer.alloc(DELIVERY_PAYLOAD_LIMITS.opaqueBytes + 1).toString('base64') }), 'value', /1-65536 bytes/],
    ['disk: key of 16 bytes', with_('disk', { key: randomBytes(16).toString('base64') }), 'key', /32 or 64 bytes/],
    ['disk: key missing', without('disk', 'key'), 'key', /base64/],
    ['disk: generation 0', with_('disk', { generation: 0 }), 'generation', /at least 1/],
    ['disk: generation 1.5', with_('disk', { generation: 1.5 }), 'generation', /integer/],
    ['disk: generation "2"', with_('disk', { generation: '2' }), 'generation', /integer/],
    ['disk: generation beyond 2^53', with_('disk', { generation: 2 ** 53 }), 'generation', /integer/],
  ])('refuses %s, naming the field', (_what, payload, field, message) => {
    const error = refusal(payload);
    expect(error.field).toBe(field);
    expect(error.code).toBe('delivery.invalid-payload');
    expect(error.message).toMatch(message);
  });

  it('never quotes the payload in a refusal', () => {
    const secretText = 'TOP-SECRET-VALUE';
    for (const payload of [`{"format":1,"kind":"opaque","value":"${secretText}"`, `{"format":1,"kind":"opaque","value":"${secretText}"}`, `{"format":1,"kind":"tls","keyPem":"${secretText}","certPem":"","chainPem":""}`]) {
      const error = refusal(Buffer.from(payload));
      expect(error.message).not.toContain(secretText);
    }
  });
});
