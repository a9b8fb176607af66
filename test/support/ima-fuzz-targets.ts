import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  attestImaMeasurements,
  buildImaEntry,
  ExcludeMatcher,
  ExcludePatternError,
  ImaParseError,
  marshalBinaryEntry,
  parseAsciiMeasurementList,
  parseBinaryMeasurementList,
  parseRuntimePolicy,
  RuntimePolicyError,
  zeroPcr,
} from '@rackseal/ima';
import { fixturePath } from './fixtures';

export interface ImaFuzzTarget {
  readonly name: string;
  readonly suiteInputs: number;
  readonly seeds: () => Buffer[];
  readonly parse: (input: Buffer) => unknown;
  /** The parser's one typed refusal; anything else escaping is a crash. */
  readonly isExpected: (error: unknown) => boolean;
}

const fixture = (name: string): Buffer => readFileSync(fixturePath('ima', name));
const isImaParseError = (e: unknown): boolean => e instanceof ImaParseError;

/** Whole entries of the real binary lists (the upstream files end in stray bytes), and a synthetic list with sig and buf fields. */
function binarySeeds(): Buffer[] {
  const synthetic = [
    buildImaEntry({ template: 'ima-sig', algorithm: 'sha256', digest: Buffer.alloc(32, 1), name: '/usr/bin/dd', signature: Buffer.from('030204f3452d2300020102', 'hex') }),
    buildImaEntry({ template: 'ima-buf', algorithm: 'sha256', digest: createHash('sha256').update('x').digest(), name: 'kexec-cmdline', buffer: Buffer.from('x') }),
    buildImaEntry({ template: 'ima', algorithm: 'sha1', digest: Buffer.alloc(20, 2), name: '/init' }),
  ];
  return [
    fixture('tpm2-tss_sml-ima-ng-sha1.bin').subarray(0, 558),
    fixture('tpm2-tss_sml-ima-sha1.bin').subarray(0, 916),
    fixture('tpm2-tss_sml-ima-sig-sha256.bin').subarray(0, 987),
    fixture('tpm2-tss_sml-ima-sig-sha256-invalidated.bin'),
    Buffer.concat(synthetic.map(marshalBinaryEntry)),
  ];
}

function asciiSeeds(): Buffer[] {
  const rust = fixture('rust-keylime-ascii_runtime_measurements').toString('latin1').split('\n').slice(0, 12).join('\n');
  return [
    ...['keylime-signatures.txt', 'keylime-keyrings.txt', 'keylime-measurements.txt', 'keylime-ima-log-sha256'].map(fixture),
    Buffer.from(rust, 'latin1'),
  ];
}

const FUZZ_POLICY = parseRuntimePolicy({
  meta: { version: 1 },
  digests: { '/init': ['972d62ff5b3a74e89952e0980b2099eed49bf8f0'], boot_aggregate: ['0000000000000000000000000000000000000000'] },
  excludes: ['/usr/lib/.*\\.so$', '(/etc|/conf)/'],
  keyrings: { '.ima': ['a7d52aaa18c23d2d9bb2abb4308c0eeee67387a42259f4a6b1a42257065f3d5a'] },
});

/**
 * Parses a binary list and reads every field of every entry back: a parsed entry is offsets into the
 * list, its fields made when read (BinaryListEntry), so a wrong offset shows only when they are read.
 * Each entry's record, written again from its fields, must be its raw bytes, and its template data,
 * built again from its digest, name and sig/buf, its template data; anything else is a crash.
 */
function parseAndReadBack(input: Buffer): number {
  const entries = parseBinaryMeasurementList(input);
  for (const entry of entries) {
    if (!marshalBinaryEntry(entry).equals(entry.raw) || !entry.templateHashIs(entry.templateHash) || entry.path !== entry.name.toString('utf8')) {
      throw new Error(`entry ${entry.index}: its fields do not write back to its record`);
    }
    if ((entry.signature !== undefined) !== (entry.templateName === 'ima-sig') || (entry.buffer !== undefined) !== (entry.templateName === 'ima-buf')) {
      throw new Error(`entry ${entry.index}: sig/buf fields do not match the ${entry.templateName} template`);
    }
    const { algorithm, digest } = entry.digest;
    const rebuilt = buildImaEntry({
      template: entry.templateName,
      algorithm,
      digest,
      name: entry.name,
      ...(entry.signature !== undefined ? { signature: entry.signature } : {}),
      ...(entry.buffer !== undefined ? { buffer: entry.buffer } : {}),
    });
    if (!rebuilt.templateData.equals(entry.templateData)) {
      throw new Error(`entry ${entry.index}: its digest, name and sig/buf do not build its template data`);
    }
  }
  return entries.length;
}

/** libs/ima's parsers of untrusted input (lists from agents, policies from operators); the suite and bench/ fuzz the same list. */
export const IMA_FUZZ_TARGETS: readonly ImaFuzzTarget[] = [
  { name: 'IMA binary list', suiteInputs: 100_000, seeds: binarySeeds, parse: parseAndReadBack, isExpected: isImaParseError },
  { name: 'IMA ASCII list', suiteInputs: 100_000, seeds: asciiSeeds, parse: (b) => parseAsciiMeasurementList(b), isExpected: isImaParseError },
  {
    // What parses must also replay and evaluate without an exception (verdicts, not crashes).
    name: 'IMA list → attestation',
    suiteInputs: 30_000,
    seeds: () => [...binarySeeds(), ...asciiSeeds().map((s) => Buffer.concat(parseAsciiMeasurementList(s).map(marshalBinaryEntry)))],
    parse: (b) => {
      const entries = parseBinaryMeasurementList(b);
      const result = attestImaMeasurements(undefined, { bank: 'sha256', bootTime: 'b', startIndex: 0, entries, quotedPcr10: zeroPcr('sha256') }, FUZZ_POLICY);
      // Every verdict built, the plainly allowed ones included (they are built when read).
      return result.verdicts.length;
    },
    isExpected: isImaParseError,
  },
  {
    name: 'runtime policy JSON',
    suiteInputs: 30_000,
    seeds: () => ['keylime-policy-sha256', 'keylime-runtime-policy-test.json', 'keylime-runtime-policy.json'].map(fixture),
    parse: (b) => parseRuntimePolicy(b),
    isExpected: (e) => e instanceof RuntimePolicyError,
  },
  {
    // Mutated patterns compile or are refused, and what compiles matches a long path without throwing.
    name: 'exclude patterns',
    suiteInputs: 50_000,
    seeds: () => ['/tmp/.*', '^/var/log/[^/]+\\.log$', '(?:/opt|/srv)/\\w+/(a|b)*c{2,5}', '[^a-z0-9_]\\d+\\Z', '(?P<x>/usr)/lib(64)?/.+\\.so(\\.\\d+)*$'].map((p) => Buffer.from(p)),
    parse: (b) => ExcludeMatcher.compile([b.toString('utf8')]).match(`/usr/lib64/${'a'.repeat(300)}.so.1`),
    isExpected: (e) => e instanceof ExcludePatternError,
  },
];
