import {
  AK_TEMPLATE_RSA,
  EK_TEMPLATE_ECC_L2,
  EK_TEMPLATE_ECC_P384_H3,
  EK_TEMPLATE_RSA_L1,
  marshalPcrSelection,
  marshalTpm2bPublic,
  marshalTpmtPublic,
  parsePcrSelection,
  TpmParseError,
  unmarshalPcrSelection,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
} from '@rackseal/tpm2';

export interface FuzzTarget {
  readonly name: string;
  /** Valid inputs the mutants are derived from. */
  readonly seeds: () => Buffer[];
  readonly parse: (input: Buffer) => unknown;
}

export const isTpmParseError = (error: unknown): boolean => error instanceof TpmParseError;

/** Every libs/tpm2 parser of untrusted bytes, with valid seeds; the suite and bench/ fuzz the same list. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  {
    name: 'TPMT_PUBLIC',
    seeds: () => [EK_TEMPLATE_RSA_L1, EK_TEMPLATE_ECC_L2, EK_TEMPLATE_ECC_P384_H3, AK_TEMPLATE_RSA].map(marshalTpmtPublic),
    parse: unmarshalTpmtPublic,
  },
  {
    name: 'TPM2B_PUBLIC',
    seeds: () => [EK_TEMPLATE_RSA_L1, EK_TEMPLATE_ECC_L2].map(marshalTpm2bPublic),
    parse: unmarshalTpm2bPublic,
  },
  {
    name: 'TPML_PCR_SELECTION',
    seeds: () => ['sha256:0,7', 'sha1:0,1,2+sha256:0,7,23', 'sha384:16'].map((s) => marshalPcrSelection(parsePcrSelection(s))),
    parse: unmarshalPcrSelection,
  },
];
