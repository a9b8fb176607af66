import { ekPubHash } from '../keys';
import type { TPML_PCR_SELECTION } from '../structures/tpml-pcr-selection';
import type { TpmClient } from '../client/tpm-client';
import { getHandles, getPcrBanks, getTpmProperties } from '../commands/capability';
import { TPM_HT, TPM_PT } from '../commands/capability-constants';
import { EK_CERTIFICATE_INDICES, type EkKeyType, readEkCertificate } from './ek-certificates';
import { type EkKind, getEndorsementKey } from './endorsement-key';
import { withTpmScope } from './tpm-scope';

/**
 * One EK certificate index and the TPM's EK of its key type. Reading the certificate in `nvData` and
 * comparing keys is the caller's: the agent does it with `@rackseal/ek-trust`, the reader the server
 * uses, so both sides accept and refuse the same certificates.
 */
export interface EkCertificateIndexReport {
  readonly nvIndex: number;
  readonly keyType: EkKeyType;
  /** The index content as read; absent when it could not be read (see `problem`). */
  readonly nvData?: Buffer;
  /** Where the TPM's EK of this type came from: its persistent handle, or derived by CreatePrimary. */
  readonly ek?: { readonly handle?: number; readonly source: 'persistent' | 'nv-template' | 'default-template'; readonly ekPubHash: string };
  /** Why the index could not be read, or why there is no `ek` (no template for the type, or the TPM refused). */
  readonly problem?: string;
}

/** What `rackseal-agent tpm info` reports: enough to tell whether a TPM is usable for rackseal. */
export interface TpmInfo {
  /** TPM_PT_MANUFACTURER as its 4 ASCII characters, trailing NULs and spaces removed ("IBM", "IFX", "NTC"). */
  readonly manufacturer: string;
  readonly manufacturerId: number;
  /** TPM_PT_VENDOR_STRING_1..4 concatenated, NULs removed, trimmed ("SW   TPM"). */
  readonly vendorString: string;
  /** TPM_PT_FIRMWARE_VERSION_1 as major.minor (its high and low 16 bits), as vendors print it. */
  readonly firmwareVersion: string;
  /** TPM_PT_FIRMWARE_VERSION_1 and _2 as the TPM reports them. */
  readonly firmwareVersionRaw: readonly [number, number];
  /** TPM_PT_FAMILY_INDICATOR ("2.0"), TPM_PT_LEVEL and TPM_PT_REVISION (×100: 164 is 1.64). */
  readonly spec: { readonly family: string; readonly level: number; readonly revision: string; readonly year: number; readonly dayOfYear: number };
  readonly pcrBanks: TPML_PCR_SELECTION;
  readonly ekCertificates: readonly EkCertificateIndexReport[];
}

/** A TPM_PT value holding up to four ASCII characters (Part 2 §6.13), NUL-padded. */
function fourChars(value: number): string {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(value >>> 0);
  return bytes.toString('latin1').replace(/\0/g, '');
}

const EK_KINDS: Partial<Record<EkKeyType, EkKind>> = { 'rsa-2048': 'rsa-2048', 'ecc-p256': 'ecc-p256', 'ecc-p384': 'ecc-p384' };

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/**
 * Reads one certificate index and, when rackseal knows the EK template of its key type, finds the
 * TPM's EK of that type (getEndorsementKey: persistent, or derived and flushed again). Failures are
 * reported on the index, not thrown: "is this TPM usable?" should show every index, broken ones included.
 */
async function reportIndex(client: TpmClient, slot: { nvIndex: number; keyType: EkKeyType }): Promise<EkCertificateIndexReport> {
  const base = { nvIndex: slot.nvIndex, keyType: slot.keyType };
  let nvData: Buffer;
  try {
    ({ nvData } = await readEkCertificate(client, slot));
  } catch (error) {
    return { ...base, problem: message(error) };
  }
  const kind = EK_KINDS[slot.keyType];
  if (kind === undefined) {
    return { ...base, nvData, problem: `rackseal has no EK template for ${slot.keyType}: the EK was not compared` };
  }
  try {
    return await withTpmScope(client, async (scope) => {
      const ek = await getEndorsementKey(scope, kind);
      return { ...base, nvData, ek: { handle: ek.source === 'persistent' ? ek.handle : undefined, source: ek.source, ekPubHash: ekPubHash(ek.public) } };
    });
  } catch (error) {
    return { ...base, nvData, problem: `could not get the TPM's ${kind} EK: ${message(error)}` };
  }
}

/**
 * Identity and readiness of a TPM (docs/architecture.md §6, `rackseal-agent tpm info`): manufacturer, vendor
 * strings, firmware and spec version from the PT_FIXED properties (one GetCapability), allocated PCR
 * banks, and every EK certificate index with its content and the TPM's EK of that type. Leaves no
 * transient object behind (EKs derived for the comparison are flushed).
 */
export async function tpmInfo(client: TpmClient): Promise<TpmInfo> {
  const fixed = new Map((await getTpmProperties(client, TPM_PT.TPM_PT_FAMILY_INDICATOR, 256)).map((p) => [p.property, p.value]));
  const property = (pt: number) => fixed.get(pt) ?? 0;
  const firmware1 = property(TPM_PT.TPM_PT_FIRMWARE_VERSION_1);
  const firmware2 = property(TPM_PT.TPM_PT_FIRMWARE_VERSION_2);
  const pcrBanks = await getPcrBanks(client);
  const present = new Set(await getHandles(client, TPM_HT.TPM_HT_NV_INDEX));
  const ekCertificates: EkCertificateIndexReport[] = [];
  for (const slot of EK_CERTIFICATE_INDICES.filter((s) => present.has(s.nvIndex))) {
    ekCertificates.push(await reportIndex(client, slot));
  }
  return {
    manufacturer: fourChars(property(TPM_PT.TPM_PT_MANUFACTURER)).trim(),
    manufacturerId: property(TPM_PT.TPM_PT_MANUFACTURER),
    vendorString: [TPM_PT.TPM_PT_VENDOR_STRING_1, TPM_PT.TPM_PT_VENDOR_STRING_2, TPM_PT.TPM_PT_VENDOR_STRING_3, TPM_PT.TPM_PT_VENDOR_STRING_4]
      .map((pt) => fourChars(property(pt)))
      .join('')
      .trim(),
    firmwareVersion: `${firmware1 >>> 16}.${firmware1 & 0xffff}`,
    firmwareVersionRaw: [firmware1, firmware2],
    spec: {
      family: fourChars(property(TPM_PT.TPM_PT_FAMILY_INDICATOR)),
      level: property(TPM_PT.TPM_PT_LEVEL),
      revision: (property(TPM_PT.TPM_PT_REVISION) / 100).toFixed(2),
      year: property(TPM_PT.TPM_PT_YEAR),
      dayOfYear: property(TPM_PT.TPM_PT_DAY_OF_YEAR),
    },
    pcrBanks,
    ekCertificates,
  };
}
