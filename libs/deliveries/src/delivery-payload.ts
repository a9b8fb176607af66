import type { SecretKind } from '@rackseal/api-contracts';
import { type DeliveryPayloadJson, encodeDeliveryPayload } from '@rackseal/node-api-contracts';
import { DeliveryError } from './delivery-errors';

/** What one delivery carries to the agent, before sealing, as libs/secrets holds it. */
export interface DeliveryPayloadInput {
  readonly kind: SecretKind;
  readonly name: string;
  readonly version: number;
  /** The secret bytes: PKCS#8 DER of a key (tls, kubelet-client), the disk key, or the opaque value. */
  readonly material: Buffer;
  readonly certificatePem?: string;
  /** The issuing CA's certificate (the chain the agent installs beside the certificate). */
  readonly caCertificatePem?: string;
  readonly kubeletConf?: string;
}

/** RFC 7468 §10: one PKCS#8 "PRIVATE KEY" block, base64 lines of 64 characters, LF line ends. */
function pkcs8Pem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN PRIVATE KEY-----\n${lines.join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/** PEM as the payload's strict parser takes it: LF line ends, ending with one. */
function lfPem(text: string | undefined, what: string, name: string): string {
  if (text === undefined || text.length === 0) {
    throw new DeliveryError('delivery.not-found', `${name}: the ${what} of this version is missing`);
  }
  const lf = text.replace(/\r\n/g, '\n');
  return lf.endsWith('\n') ? lf : `${lf}\n`;
}

/**
 * The payload's bytes in the one format the agent parses: libs/node-api-contracts
 * `encodeDeliveryPayload` (delivery-payloads.ts: UTF-8 JSON, `format: 1`, one layout per kind). A
 * disk key's `generation` is its version number (versions only grow, so a re-delivered or older
 * version is never applied again). The caller zeroes the answer after sealing; the JSON string the
 * encoder builds is V8's and is dropped at once (JavaScript strings cannot be wiped).
 */
export function serialiseDeliveryPayload(p: DeliveryPayloadInput): Buffer {
  const json = ((): DeliveryPayloadJson => {
    switch (p.kind) {
      case 'tls':
        return { format: 1, kind: 'tls', secret: p.name, keyPem: pkcs8Pem(p.material), certPem: lfPem(p.certificatePem, 'certificate', p.name), chainPem: lfPem(p.caCertificatePem, 'CA certificate', p.name) };
      case 'kubelet-client':
        return { format: 1, kind: 'kubelet-client', secret: p.name, keyPem: pkcs8Pem(p.material), certPem: lfPem(p.certificatePem, 'certificate', p.name), kubeconfig: lfPem(p.kubeletConf, 'kubelet.conf', p.name) };
      case 'opaque':
        return { format: 1, kind: 'opaque', secret: p.name, value: p.material.toString('base64') };
      case 'disk':
        return { format: 1, kind: 'disk', secret: p.name, key: p.material.toString('base64'), generation: p.version };
    }
  })();
  return encodeDeliveryPayload(json);
}
