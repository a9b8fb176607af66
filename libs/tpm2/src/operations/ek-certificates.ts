import type { TpmClient } from '../client/tpm-client';
import { getHandles } from '../commands/capability';
import { TPM_HT } from '../commands/capability-constants';
import { nvReadAll } from '../commands/nv';

export type EkKeyType = 'rsa-2048' | 'ecc-p256' | 'ecc-p384' | 'rsa-3072' | 'rsa-4096';

/**
 * Where TPM makers store EK certificates (TCG EK Credential Profile 2.5 §2.2.1.4):
 * the low range (L-1 RSA-2048, L-2 P-256) and the high-range indices seen on shipping parts and swtpm.
 */
export const EK_CERTIFICATE_INDICES: readonly { readonly nvIndex: number; readonly keyType: EkKeyType }[] = [
  { nvIndex: 0x01c00002, keyType: 'rsa-2048' },
  { nvIndex: 0x01c0000a, keyType: 'ecc-p256' },
  { nvIndex: 0x01c00016, keyType: 'ecc-p384' },
  { nvIndex: 0x01c0001c, keyType: 'rsa-3072' },
  { nvIndex: 0x01c0001e, keyType: 'rsa-4096' },
];

/**
 * What an EK certificate index holds, as read. Finding the certificate in it (a TCG NV header,
 * 0xFF/0x00 padding, other trailing bytes) is `@rackseal/ek-trust`'s `readCertificate`, the one
 * reader the server, the CLI and the agent share, so all three accept and name the same quirks.
 */
export interface EkCertificateIndex {
  readonly nvIndex: number;
  readonly keyType: EkKeyType;
  /** The index content, every byte of it. */
  readonly nvData: Buffer;
}

/** One EK certificate index, read whole. */
export async function readEkCertificate(client: TpmClient, slot: { nvIndex: number; keyType: EkKeyType }): Promise<EkCertificateIndex> {
  return { nvIndex: slot.nvIndex, keyType: slot.keyType, nvData: await nvReadAll(client, slot.nvIndex) };
}

/**
 * Every EK certificate the TPM holds, in EK_CERTIFICATE_INDICES order. Which indices exist is asked
 * once (TPM_CAP_HANDLES) rather than probing each, which would make the TPM answer TPM_RC_HANDLE
 * for every absent one.
 */
export async function readEkCertificates(client: TpmClient): Promise<EkCertificateIndex[]> {
  const present = new Set(await getHandles(client, TPM_HT.TPM_HT_NV_INDEX));
  const certificates: EkCertificateIndex[] = [];
  for (const slot of EK_CERTIFICATE_INDICES.filter((s) => present.has(s.nvIndex))) {
    certificates.push(await readEkCertificate(client, slot));
  }
  return certificates;
}
