/**
 * libs/ima builds the verdicts of plainly allowed entries only when read (judge-entries.ts,
 * evaluate.ts isPlainlyAllowed). Held here on many seeded random lists and policies: the lazily built
 * `verdicts` of attestImaMeasurements equal evaluateImaEntry's, entry by entry, `failures` are
 * exactly the ones not ok, and wherever the shortcut says "allowed by the digests list" the full
 * judgement (judgeImaEntry) says the same — over `alg:hex` policy digests, digest algorithms other
 * than the policy's, boot_aggregate, ima-sig with an empty or a malformed signature, ima-buf, the
 * legacy `ima` template, violations, bad template hashes, another PCR, excludes and a path
 * `__proto__`, and names that are not UTF-8 or policy keys no bytes spell (a lone surrogate). Each
 * list is judged as built and as parsed from its binary form, whose entries the shortcut reads in place
 * (BinaryListEntry, PathDigestIndex). A failure prints its seed.
 */
import { createHash } from 'node:crypto';
import {
  attestImaMeasurements,
  BinaryListEntry,
  buildImaEntry,
  evaluateImaEntry,
  evaluationContext,
  type ImaBank,
  type ImaEntry,
  type ImaHashAlgorithm,
  IMA_HASH_ALGORITHMS,
  initialImaState,
  isPlainlyAllowed,
  judgeImaEntry,
  marshalBinaryEntry,
  parseBinaryMeasurementList,
  parseRuntimePolicy,
  replayImaEntries,
  zeroPcr,
} from '@rackseal/ima';
import { Prng } from './support/fuzz';

// '/bin/\ufffd' is also what a name holding the invalid UTF-8 byte 0xff decodes to; '/bin/\ud800' (a
// lone surrogate, which JSON allows) is a policy key no name's bytes spell.
const PATHS = ['/usr/bin/a', '/usr/bin/b', '/etc/ld.so.cache', 'boot_aggregate', '__proto__', 'constructor', '/tmp/scratch/x', '.ima', '/bin/\ufffd', '/bin/\ud800'];
const INVALID_UTF8_NAME = Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xff]);
const ALGORITHMS = Object.keys(IMA_HASH_ALGORITHMS) as ImaHashAlgorithm[];
const BANKS: ImaBank[] = ['sha1', 'sha256', 'sha384', 'sha512'];
/** A few digests per size, so that entries and policies meet. */
const digestOf = (algorithm: ImaHashAlgorithm, which: number): Buffer =>
  createHash('sha512').update(`content ${which}`).digest().subarray(0, IMA_HASH_ALGORITHMS[algorithm].size);

function pick<T>(rng: Prng, from: readonly T[]): T {
  return from[rng.below(from.length)]!;
}

function randomEntry(rng: Prng, index: number, templateHashAlgorithm: ImaBank): ImaEntry {
  const roll = rng.below(20);
  const path = pick(rng, PATHS);
  const name = path === '/bin/\ufffd' && rng.below(2) === 0 ? INVALID_UTF8_NAME : path;
  if (roll === 0) {
    return buildImaEntry({ template: 'ima-ng', algorithm: 'sha1', digest: Buffer.alloc(20), name, violation: true }, index, templateHashAlgorithm);
  }
  if (roll === 1) {
    return buildImaEntry({ template: 'ima', algorithm: 'sha1', digest: digestOf('sha1', rng.below(3)), name }, index, templateHashAlgorithm);
  }
  const algorithm = pick(rng, ALGORITHMS);
  const digest = digestOf(algorithm, rng.below(3));
  const pcr = rng.below(12) === 0 ? 11 : 10;
  if (roll <= 4) {
    const signature = pick(rng, [Buffer.alloc(0), Buffer.from([0x03, 0x02, 0x04]), Buffer.from('not a signature')]);
    return buildImaEntry({ pcr, template: 'ima-sig', algorithm, digest, name, signature }, index, templateHashAlgorithm);
  }
  if (roll === 5) {
    const buffer = Buffer.from(`buffer ${rng.below(2)}`);
    return buildImaEntry({ pcr, template: 'ima-buf', algorithm: 'sha256', digest: rng.below(2) === 0 ? createHash('sha256').update(buffer).digest() : digestOf('sha256', 0), name, buffer }, index, templateHashAlgorithm);
  }
  const entry = buildImaEntry({ pcr, template: 'ima-ng', algorithm, digest, name }, index, templateHashAlgorithm);
  // Now and then a logged template hash that is not the hash of the template data.
  return rng.below(15) === 0 ? { ...entry, templateHash: Buffer.alloc(entry.templateHash.length, 0x11) } : entry;
}

function randomPolicy(rng: Prng): ReturnType<typeof parseRuntimePolicy> {
  const digests: Record<string, string[]> = {};
  for (const path of PATHS) {
    if (rng.below(4) === 0) {
      continue;
    }
    // Up to six: both sides of the shortcut's "one or two digests compared in place, more by hex".
    const list = new Set<string>();
    for (let n = 1 + rng.below(6); n > 0; n -= 1) {
      const algorithm = pick(rng, ALGORITHMS.filter((a) => a !== 'md5'));
      const hex = digestOf(algorithm, rng.below(3)).toString('hex');
      list.add(rng.below(3) === 0 ? `${pick(rng, [algorithm, algorithm, 'sha256'])}:${hex}` : hex);
    }
    digests[path] = [...list].filter((d) => !d.includes(':') || d.split(':')[1]!.length === IMA_HASH_ALGORITHMS[d.split(':')[0] as ImaHashAlgorithm].size * 2);
    if (digests[path]!.length === 0) {
      delete digests[path];
    }
  }
  const document = {
    meta: { version: 1 },
    release: 0,
    digests,
    excludes: rng.below(2) === 0 ? [] : ['^/tmp/', ...(rng.below(2) === 0 ? ['^constructor$'] : [])],
    keyrings: {},
    ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
    'ima-buf': rng.below(2) === 0 ? {} : { '.ima': [createHash('sha256').update('buffer 0').digest('hex')] },
    'verification-keys': '',
  };
  return parseRuntimePolicy(JSON.stringify(document));
}

describe('libs/ima: verdicts built when read are the ones evaluateImaEntry gives', () => {
  it('on 400 seeded random lists and policies, entry by entry, failures the ones not ok — as built, and as parsed from the binary list (read in place)', () => {
    let entriesSeen = 0;
    let shortcuts = 0;
    let shortcutsInPlace = 0;
    for (let seed = 1; seed <= 400; seed += 1) {
      const rng = new Prng(seed);
      const bank = pick(rng, BANKS);
      const templateHashAlgorithm = pick(rng, BANKS);
      const policy = randomPolicy(rng);
      const built = Array.from({ length: 1 + rng.below(60) }, (_, i) => randomEntry(rng, i, templateHashAlgorithm));
      const bootAggregates = rng.below(2) === 0 ? undefined : [digestOf(pick(rng, ['sha1', 'sha256'] as const), rng.below(3)).toString('hex')];
      const replay = replayImaEntries(built, zeroPcr(bank), undefined, { bank, templateHashAlgorithm });
      // Mostly a quote the list reaches; now and then one it does not (the round fails, verdicts still given).
      const quotedPcr10 = rng.below(5) === 0 ? Buffer.alloc(replay.final.length, 0x42) : replay.final;
      const invalid = new Set(replay.invalidTemplateHashes);
      const parsed = parseBinaryMeasurementList(Buffer.concat(built.map(marshalBinaryEntry)), { templateHashAlgorithm });
      let builtVerdicts: readonly unknown[] | undefined;
      for (const entries of [built, parsed] as readonly ImaEntry[][]) {
        const form = entries === built ? 'built' : 'parsed';
        const result = attestImaMeasurements(
          initialImaState(bank, 'boot'),
          { bank, bootTime: 'boot', startIndex: 0, entries, quotedPcr10, templateHashAlgorithm, ...(bootAggregates === undefined ? {} : { bootAggregates }) },
          policy,
        );
        const context = evaluationContext(policy, [], bootAggregates);
        const expected = entries.map((entry, i) => evaluateImaEntry(entry, !invalid.has(i), policy, context));
        expect({ seed, form, verdicts: result.verdicts }).toEqual({ seed, form, verdicts: expected });
        expect({ seed, form, failures: result.failures }).toEqual({ seed, form, failures: expected.filter((v) => !v.ok) });
        // Read in place or not, the same entries get the same verdicts.
        builtVerdicts ??= result.verdicts;
        expect({ seed, form, verdicts: result.verdicts }).toEqual({ seed, form, verdicts: builtVerdicts });
        // The shortcut against the full judgement, each entry in a context of its own.
        entries.forEach((entry, i) => {
          const own = evaluationContext(policy, [], bootAggregates);
          if (isPlainlyAllowed(entry, !invalid.has(i), policy, own)) {
            shortcuts += 1;
            shortcutsInPlace += entry instanceof BinaryListEntry ? 1 : 0;
            expect({ seed, form, i, verdict: judgeImaEntry(entry, !invalid.has(i), policy, evaluationContext(policy, [], bootAggregates)) }).toEqual({ seed, form, i, verdict: expected[i] });
          }
        });
        entriesSeen += entries.length;
      }
    }
    // The generator reaches both sides: the shortcut taken (read in place too), and entries judged in full.
    expect(shortcuts).toBeGreaterThan(600);
    expect(shortcutsInPlace).toBeGreaterThan(300);
    expect(entriesSeen - shortcuts).toBeGreaterThan(4000);
  });
});
