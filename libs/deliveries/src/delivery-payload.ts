import type { SecretKind } from '@rackseal/api-contracts';

/** What one delivery carries to the agent, before sealing. */
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

/**
 * Serialises a payload as JSON (`v: 1`, binary fields base64). A stand-in: the agent's contract
 * (`DeliveryPayload` per kind, libs/node-api-contracts/src/deliveries.ts) is written on another branch,
 * and this function is the one place that switches to it. The caller zeroes the answer after sealing.
 */
export function serialiseDeliveryPayload(p: DeliveryPayloadInput): Buffer {
  return Buffer.from(
    JSON.stringify({
      v: 1,
      kind: p.kind,
      name: p.name,
      version: p.version,
      material: p.material.toString('base64'),
      ...(p.certificatePem === undefined ? {} : { certificatePem: p.certificatePem }),
      ...(p.caCertificatePem === undefined ? {} : { caCertificatePem: p.caCertificatePem }),
      ...(p.kubeletConf === undefined ? {} : { kubeletConf: p.kubeletConf }),
    }),
  );
}
