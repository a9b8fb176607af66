import {
  EK_TEMPLATE_ECC_L2,
  EK_TEMPLATE_ECC_P384_H3,
  EK_TEMPLATE_RSA_L1,
  AK_TEMPLATE_RSA,
  marshalPcrSelection,
  marshalTpm2bPublic,
  marshalTpmtPublic,
  parsePcrSelection,
  TpmParseError,
  unmarshalPcrSelection,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
} from '@rackseal/tpm2';
import { fuzz } from './support/fuzz';

// Every libs/tpm2 parser meets 100,000 mutated inputs: each one parses or is refused with
// TpmParseError; nothing else escapes and nothing hangs. (bench/ runs the same with 1,000,000.)
const INPUTS_PER_PARSER = 100_000;

const isParseError = (error: unknown) => error instanceof TpmParseError;

const PARSERS: { name: string; seeds: Buffer[]; parse: (input: Buffer) => unknown }[] = [
  {
    name: 'TPMT_PUBLIC',
    seeds: [EK_TEMPLATE_RSA_L1, EK_TEMPLATE_ECC_L2, EK_TEMPLATE_ECC_P384_H3, AK_TEMPLATE_RSA].map(marshalTpmtPublic),
    parse: unmarshalTpmtPublic,
  },
  {
    name: 'TPM2B_PUBLIC',
    seeds: [EK_TEMPLATE_RSA_L1, EK_TEMPLATE_ECC_L2].map(marshalTpm2bPublic),
    parse: unmarshalTpm2bPublic,
  },
  {
    name: 'TPML_PCR_SELECTION',
    seeds: ['sha256:0,7', 'sha1:0,1,2+sha256:0,7,23', 'sha384:16'].map((s) => marshalPcrSelection(parsePcrSelection(s))),
    parse: unmarshalPcrSelection,
  },
];

describe('libs/tpm2 parsers under mutation', () => {
  it.each(PARSERS)('$name: 100k mutants parse or fail with TpmParseError only', ({ seeds, parse }) => {
    const report = fuzz(seeds, parse, isParseError, INPUTS_PER_PARSER);
    expect(report.unexpected).toEqual([]);
    expect(report.crashes).toBe(0);
    expect(report.accepted + report.refused).toBe(INPUTS_PER_PARSER);
    // Both outcomes must occur, or the mutator is not reaching the parser's logic.
    expect(report.accepted).toBeGreaterThan(0);
    expect(report.refused).toBeGreaterThan(0);
    // No single input may stall the parser (a hang, not a timing target).
    expect(report.slowestMs).toBeLessThan(1000);
  });
});
