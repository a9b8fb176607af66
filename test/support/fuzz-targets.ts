import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AK_TEMPLATE_RSA,
  createImportBlob,
  ekPublicFromKey,
  makeCredential,
  marshal,
  marshalCredentialFile,
  marshalEventLog,
  marshalTpm2bSensitive,
  objectName,
  parseCredentialFile,
  parseEventLog,
  replayEventLog,
  unmarshalTpm2bAttest,
  unmarshalTpm2bEncryptedSecret,
  unmarshalTpm2bIdObject,
  unmarshalTpm2bPrivate,
  unmarshalTpm2bSensitive,
  unmarshalTpmsAttest,
  unmarshalTpmtSignature,
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
import { fixturePath } from './fixtures';
import { repoRoot } from './repo-root';

export interface FuzzTarget {
  readonly name: string;
  /** Mutants per suite run; 0 where a dedicated suite fuzzes it (the event log: test/tpm2-eventlog.test.ts). */
  readonly suiteInputs: number;
  /** Valid inputs the mutants are derived from. */
  readonly seeds: () => Buffer[];
  readonly parse: (input: Buffer) => unknown;
}

export const isTpmParseError = (error: unknown): boolean => error instanceof TpmParseError;

const SWTPM_VECTORS = (): Record<string, Record<string, string>> =>
  JSON.parse(readFileSync(join(repoRoot(), 'libs/tpm2/src/verify/swtpm-vectors.json'), 'utf8')) as Record<string, Record<string, string>>;
const hex = (text: string) => Buffer.from(text, 'hex');

/** Real blobs made by the library for an RSA and a P-256 EK (the shapes a server sends out). */
function madeBlobs() {
  const eks = [
    ekPublicFromKey(generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey),
    ekPublicFromKey(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey),
  ];
  const akName = objectName(AK_TEMPLATE_RSA);
  return eks.map((ek) => ({ credential: makeCredential(ek, akName, Buffer.alloc(32, 1)), blob: createImportBlob(ek, Buffer.alloc(32, 2)) }));
}

/** Event logs cut to their first records: mutants of short logs reach every record parser fast. */
function shortEventLogs(): Buffer[] {
  return ['crypto_agile_eventlog', 'ebs_event_missing_eventlog', 'sb_cert_eventlog'].map((file) => {
    const log = parseEventLog(readFileSync(fixturePath('eventlogs', file)));
    return marshalEventLog({ specId: log.specId, events: log.events.slice(0, 8) });
  });
}

/** Every libs/tpm2 parser of untrusted bytes, with valid seeds; the suite and bench/ fuzz the same list. */
export const FUZZ_TARGETS: readonly FuzzTarget[] = [
  {
    name: 'TPMT_PUBLIC',
    suiteInputs: 100_000,
    seeds: () => [EK_TEMPLATE_RSA_L1, EK_TEMPLATE_ECC_L2, EK_TEMPLATE_ECC_P384_H3, AK_TEMPLATE_RSA].map(marshalTpmtPublic),
    parse: unmarshalTpmtPublic,
  },
  {
    name: 'TPM2B_PUBLIC',
    suiteInputs: 100_000,
    seeds: () => [EK_TEMPLATE_RSA_L1, EK_TEMPLATE_ECC_L2].map(marshalTpm2bPublic),
    parse: unmarshalTpm2bPublic,
  },
  {
    name: 'TPML_PCR_SELECTION',
    suiteInputs: 100_000,
    seeds: () => ['sha256:0,7', 'sha1:0,1,2+sha256:0,7,23', 'sha384:16'].map((s) => marshalPcrSelection(parsePcrSelection(s))),
    parse: unmarshalPcrSelection,
  },
  {
    name: 'TPMS_ATTEST',
    suiteInputs: 100_000,
    seeds: () => {
      const v = SWTPM_VECTORS();
      return [v.rsassaQuote!.msg!, v.ecdsaQuote!.msg!, v.certify!.msg!].map(hex);
    },
    parse: unmarshalTpmsAttest,
  },
  {
    name: 'TPM2B_ATTEST',
    suiteInputs: 100_000,
    seeds: () => {
      const v = SWTPM_VECTORS();
      return [v.rsassaQuote!.msg!, v.certify!.msg!].map((m) => marshal((w) => w.tpm2b(hex(m))));
    },
    parse: unmarshalTpm2bAttest,
  },
  {
    name: 'TPMT_SIGNATURE',
    suiteInputs: 100_000,
    seeds: () => {
      const v = SWTPM_VECTORS();
      return [v.rsassaQuote!.sig!, v.ecdsaQuote!.sig!, v.rsapssQuote!.sig!].map(hex);
    },
    parse: unmarshalTpmtSignature,
  },
  {
    name: 'TPM2B_SENSITIVE',
    suiteInputs: 100_000,
    seeds: () => [marshalTpm2bSensitive({ sensitiveType: 0x0008, authValue: Buffer.alloc(0), seedValue: Buffer.alloc(32, 3), sensitive: Buffer.alloc(32, 4) })],
    parse: unmarshalTpm2bSensitive,
  },
  {
    name: 'TPM2B_ID_OBJECT',
    suiteInputs: 100_000,
    seeds: () => madeBlobs().map((m) => m.credential.credentialBlob),
    parse: unmarshalTpm2bIdObject,
  },
  {
    name: 'TPM2B_ENCRYPTED_SECRET',
    suiteInputs: 100_000,
    seeds: () => madeBlobs().map((m) => m.credential.encryptedSecret),
    parse: unmarshalTpm2bEncryptedSecret,
  },
  {
    name: 'TPM2B_PRIVATE',
    suiteInputs: 100_000,
    seeds: () => madeBlobs().map((m) => m.blob.duplicate),
    parse: unmarshalTpm2bPrivate,
  },
  {
    name: 'credential file (0xBADCC0DE)',
    suiteInputs: 100_000,
    seeds: () => madeBlobs().map((m) => marshalCredentialFile(m.credential)),
    parse: parseCredentialFile,
  },
  {
    name: 'TCG event log (parse + replay)',
    suiteInputs: 0,
    seeds: shortEventLogs,
    parse: (input) => replayEventLog(parseEventLog(input)),
  },
];
