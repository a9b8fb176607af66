/**
 * libs/ima PathDigestIndex: the runtime policy's digests list keyed by the paths' bytes, which a round
 * asks of nearly every entry of a binary list, read in place. Its answers (true: listed with this
 * digest; false: judge in full; undefined: ask the Map) against the policy's Map, its probe bound
 * under a policy of colliding paths, and that a whole round over such a policy still decides as the
 * Map does. (test/ima-lazy-verdicts.test.ts holds the shortcut to the full judgement on random lists.)
 */
import { isUtf8 } from 'node:buffer';
import { createHash } from 'node:crypto';
import {
  attestImaMeasurements,
  buildImaEntry,
  initialImaState,
  marshalBinaryEntry,
  parseBinaryMeasurementList,
  parseRuntimePolicy,
  pathHash,
  PathDigestIndex,
  replayImaEntries,
  zeroPcr,
} from '@rackseal/ima';
import { Prng } from './support/fuzz';

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();
const sha1 = (text: string): Buffer => createHash('sha1').update(text).digest();

/** allows() for a path and digest given as a string and bytes, each placed inside a larger buffer (offsets matter). */
function ask(index: PathDigestIndex, path: string | Buffer, digest: Buffer): boolean | undefined {
  const name = typeof path === 'string' ? Buffer.from(path, 'utf8') : path;
  const list = Buffer.concat([Buffer.from('xx'), name, Buffer.from('yyy'), digest, Buffer.from('z')]);
  return index.allows(list, 2, 2 + name.length, list, 5 + name.length, 5 + name.length + digest.length);
}

function policyOf(digests: Record<string, string[]>) {
  return parseRuntimePolicy({ meta: { version: 1 }, digests });
}

describe('PathDigestIndex: answers', () => {
  const many = Array.from({ length: 17 }, (_, i) => sha256(`many ${i}`).toString('hex'));
  const policy = policyOf({
    '/usr/bin/one': [sha256('one').toString('hex')],
    '/usr/bin/two': [sha256('two a').toString('hex'), sha1('two b').toString('hex')],
    '/usr/bin/typed': [`sha256:${sha256('typed').toString('hex')}`],
    '/usr/bin/sixteen': many.slice(0, 16),
    '/usr/bin/seventeen': many,
    '/usr/bin/caf\u00e9': [sha256('accent').toString('hex')],
    '/bin/\ud800': [sha256('lone surrogate').toString('hex')],
  });
  const index = policy.digestIndex;

  it('a listed path with one of its bare digests: true, whatever the digest size', () => {
    expect(ask(index, '/usr/bin/one', sha256('one'))).toBe(true);
    expect(ask(index, '/usr/bin/two', sha256('two a'))).toBe(true);
    expect(ask(index, '/usr/bin/two', sha1('two b'))).toBe(true);
    expect(ask(index, '/usr/bin/caf\u00e9', sha256('accent'))).toBe(true);
    for (const hex of many.slice(0, 16)) {
      expect(ask(index, '/usr/bin/sixteen', Buffer.from(hex, 'hex'))).toBe(true);
    }
  });

  it('another digest, a digest cut short or of another size, an unlisted path, a prefix of a listed one: false', () => {
    expect(ask(index, '/usr/bin/one', sha256('other'))).toBe(false);
    expect(ask(index, '/usr/bin/one', sha256('one').subarray(0, 20))).toBe(false);
    expect(ask(index, '/usr/bin/two', sha1('two a'))).toBe(false);
    expect(ask(index, '/usr/bin/three', sha256('one'))).toBe(false);
    expect(ask(index, '/usr/bin/on', sha256('one'))).toBe(false);
    expect(ask(index, '/usr/bin/one\u0000', sha256('one'))).toBe(false);
    expect(ask(index, '/usr/bin/sixteen', Buffer.from(many[16]!, 'hex'))).toBe(false);
  });

  it('"alg:hex" digests are left to the full judgement: false', () => {
    expect(ask(index, '/usr/bin/typed', sha256('typed'))).toBe(false);
    expect(policy.digests.get('/usr/bin/typed')).toEqual(new Set([`sha256:${sha256('typed').toString('hex')}`]));
  });

  it('a path listing more digests than kept inline: undefined (ask the Map), for listed and unlisted digests alike', () => {
    expect(ask(index, '/usr/bin/seventeen', Buffer.from(many[0]!, 'hex'))).toBeUndefined();
    expect(ask(index, '/usr/bin/seventeen', sha256('not listed'))).toBeUndefined();
  });

  it('a key with a lone surrogate is left out: the bytes UTF-8 gives it (EF BF BD) decode to another path', () => {
    expect(ask(index, '/bin/\ud800', sha256('lone surrogate'))).toBe(false);
    expect(ask(index, '/bin/\ufffd', sha256('lone surrogate'))).toBe(false);
    expect(ask(index, Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xef, 0xbf, 0xbd]), sha256('lone surrogate'))).toBe(false);
  });

  it('a name that is not UTF-8 and is found nowhere: undefined (it decodes lossily, and the Map is asked what its decoding is allowed)', () => {
    const lossy = policyOf({ '/bin/\ufffd': [sha256('latin-1 name').toString('hex')] }).digestIndex;
    // 0xFF and an overlong "/" decode to "/bin/\ufffd", which the policy lists: only the Map can say so.
    expect(ask(lossy, Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xff]), sha256('latin-1 name'))).toBeUndefined();
    expect(ask(lossy, Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xc0, 0xaf]), sha256('latin-1 name'))).toBeUndefined();
    // Its UTF-8 bytes are found; a valid name found nowhere is the Map's "no" too.
    expect(ask(lossy, '/bin/\ufffd', sha256('latin-1 name'))).toBe(true);
    expect(ask(lossy, '/bin/x', sha256('latin-1 name'))).toBe(false);
  });

  it('an empty policy answers false', () => {
    expect(ask(policyOf({}).digestIndex, '/usr/bin/one', sha256('one'))).toBe(false);
  });

  it('10,000 paths: every one found with its digest, none with its neighbour\'s', () => {
    const digests = Object.fromEntries(Array.from({ length: 10_000 }, (_, i) => [`/usr/lib/x/file-${i}.so`, [sha256(`f${i}`).toString('hex')]]));
    const big = policyOf(digests).digestIndex;
    for (let i = 0; i < 10_000; i += 1) {
      expect(ask(big, `/usr/lib/x/file-${i}.so`, sha256(`f${i}`))).toBe(true);
      expect(ask(big, `/usr/lib/x/file-${i}.so`, sha256(`f${i + 1}`))).toBe(false);
    }
  });
});

describe('PathDigestIndex: a policy of colliding paths (a hostile canary\'s capture)', () => {
  // 40 paths that all start probing at slot 0 of the 128-slot table 40 keys get.
  const colliding: string[] = [];
  for (let i = 0; colliding.length < 40; i += 1) {
    const path = `/tmp/collide-${i}`;
    const bytes = Buffer.from(path);
    if ((pathHash(bytes, 0, bytes.length) & 127) === 0) {
      colliding.push(path);
    }
  }
  const digests = Object.fromEntries(colliding.map((p) => [p, [sha256(p).toString('hex')]]));
  const policy = policyOf(digests);

  it(`the first ${PathDigestIndex.MAX_PROBES} are indexed, the rest left out (undefined: the Map answers, as it would have), so no lookup probes more than ${PathDigestIndex.MAX_PROBES} slots`, () => {
    const answers = colliding.map((p) => ask(policy.digestIndex, p, sha256(p)));
    expect(answers.slice(0, PathDigestIndex.MAX_PROBES)).toEqual(Array(PathDigestIndex.MAX_PROBES).fill(true));
    expect(answers.slice(PathDigestIndex.MAX_PROBES)).toEqual(Array(40 - PathDigestIndex.MAX_PROBES).fill(undefined));
    // Another path on the same full run of slots: the bound is reached, not an empty slot, so the Map decides.
    const more = Array.from({ length: 100_000 }, (_, i) => `/tmp/collide-${i}`).find((p) => !colliding.includes(p) && (pathHash(Buffer.from(p), 0, p.length) & 127) === 0)!;
    expect(ask(policy.digestIndex, more, sha256(more))).toBeUndefined();
  });

  it('a round over a list of all 40 still allows every one (the left-out ones by the full judgement, the Map)', () => {
    const entries = colliding.map((p, i) => buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256(p), name: p }, i));
    const parsed = parseBinaryMeasurementList(Buffer.concat(entries.map(marshalBinaryEntry)));
    const quotedPcr10 = replayImaEntries(entries, zeroPcr('sha256'), undefined, { bank: 'sha256' }).final;
    const result = attestImaMeasurements(initialImaState('sha256', 'boot'), { bank: 'sha256', bootTime: 'boot', startIndex: 0, entries: parsed, quotedPcr10 }, policy);
    expect(result.outcome).toBe('verified');
    expect(result.verdicts.map((v) => [v.path, v.kind, v.rule])).toEqual(colliding.map((p) => [p, 'allowed', 'digests']));
    // One digest changed on a left-out path: the full judgement names it.
    const evil = [...entries.slice(0, 39), buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256('evil'), name: colliding[39]! }, 39)];
    const evilQuote = replayImaEntries(evil, zeroPcr('sha256'), undefined, { bank: 'sha256' }).final;
    const failed = attestImaMeasurements(
      initialImaState('sha256', 'boot'),
      { bank: 'sha256', bootTime: 'boot', startIndex: 0, entries: parseBinaryMeasurementList(Buffer.concat(evil.map(marshalBinaryEntry))), quotedPcr10: evilQuote },
      policy,
    );
    expect(failed.outcome).toBe('failed');
    expect(failed.failures.map((v) => [v.index, v.path, v.kind])).toEqual([[39, colliding[39], 'digest-mismatch']]);
  });
});

describe('PathDigestIndex: an intruder\'s keys and names (it answers as the Map, or defers to it)', () => {
  // Keys JSON can carry and names a list can carry that sit near each other in bytes or in decoding:
  // U+FFFD as a key and as what invalid UTF-8, an overlong "/" (C0 AF) or a CESU-8 surrogate (ED A0 80)
  // decode to; a lone surrogate key (UTF-8 writes it as EF BF BD); a BOM (Buffer#toString keeps it);
  // NFC against NFD; NUL; an astral character against its CESU-8 form; 4096 three-byte characters.
  const KEYS = [
    '/bin/\ufffd',
    '/bin/\ud800',
    '/bin/\udc00\ud800',
    '\ufeff/bin/bom',
    '/bin/bom',
    '/usr/bin/caf\u00e9',
    '/usr/bin/cafe\u0301',
    '/bin/a\u0000b',
    '/bin/\u{1F600}',
    '/bin/\ufffd\ufffd',
    '/bin/\ufffd\ufffd\ufffd',
    `/${'\u6771'.repeat(4095)}`,
    `/${'\u6771'.repeat(4094)}x`,
    'boot_aggregate',
    '__proto__',
  ];
  const NAMES: Buffer[] = [
    ...KEYS.map((k) => Buffer.from(k, 'utf8')),
    Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xff]),
    Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xc0, 0xaf]),
    Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xed, 0xa0, 0x80]),
    Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xed, 0xb0, 0x80, 0xed, 0xa0, 0x80]),
    Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xf0, 0x9f, 0x98]),
    Buffer.from([0x2f, 0x62, 0x69, 0x6e, 0x2f, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]),
    Buffer.from([0xef, 0xbb, 0xbf, 0x2f, 0x62, 0x69, 0x6e, 0x2f, 0x62, 0x6f, 0x6d]),
    Buffer.from('/bin/a', 'utf8'),
    Buffer.alloc(0),
  ];
  const SIZES = [16, 20, 28, 32, 48, 64];
  const digestOf = (size: number, which: number): Buffer => createHash('sha512').update(`d ${which}`).digest().subarray(0, size);
  const TYPED = { 20: 'sha1', 28: 'sha224', 32: 'sha256', 48: 'sha384', 64: 'sha512' } as Record<number, string>;

  it('150 random policies over those keys, every name and digest asked: true and false only where the Map says the same, undefined only past 16 bare digests or for a name that is not UTF-8', () => {
    let trues = 0;
    let undefineds = 0;
    const wrong: unknown[] = [];
    for (let seed = 1; seed <= 150; seed += 1) {
      const rng = new Prng(seed);
      const digests: Record<string, string[]> = {};
      for (const key of KEYS) {
        if (rng.below(3) === 0) {
          continue;
        }
        // 1, a few, exactly 16 or 17 distinct bare digests (the first few those asked below), some typed, some repeated.
        const count = [1, 2, 5, 16, 17][rng.below(5)]!;
        const list: string[] = [];
        for (let k = 0; k < count; k += 1) {
          const size = SIZES.slice(1)[rng.below(5)]!;
          const hex = digestOf(size, k < 3 ? rng.below(4) : 100 + k).toString('hex');
          list.push(k >= 3 && rng.below(6) === 0 ? `${TYPED[size]}:${hex}` : hex);
          if (rng.below(8) === 0) {
            list.push(list.at(-1)!);
          }
        }
        digests[key] = list;
      }
      const policy = policyOf(digests);
      for (const name of NAMES) {
        const allowed = policy.digests.get(name.toString('utf8'));
        const bare = [...(allowed ?? [])].filter((h) => !h.includes(':')).length;
        // The two 12,000-byte names (slow to ask under jest's sandbox) with one size only.
        for (const size of name.length > 4096 ? [32] : SIZES) {
          for (let which = 0; which < 4; which += 1) {
            const digest = digestOf(size, which);
            const answer = ask(policy.digestIndex, name, digest);
            trues += answer === true ? 1 : 0;
            undefineds += answer === undefined ? 1 : 0;
            // The Map shortcut's answer (isPlainlyAllowed before the index): the bare hex is listed for the decoded name.
            const map = allowed?.has(digest.toString('hex')) === true;
            if ((answer === true && !map) || (answer === false && map) || (answer === undefined && bare <= PathDigestIndex.INLINE_DIGESTS && isUtf8(name))) {
              wrong.push({ seed, name: name.toString('hex'), size, which, answer });
            }
          }
        }
      }
    }
    expect(wrong).toEqual([]);
    // Both answers other than false were reached.
    expect(trues).toBeGreaterThan(300);
    expect(undefineds).toBeGreaterThan(200);
  });

  it('a digest of another algorithm but the same size, bare in the policy: true, as the Map (bare hex is any algorithm of that size); typed: false', () => {
    const hex = digestOf(32, 9).toString('hex');
    const policy = policyOf({ '/a': [hex], '/b': [`sm3_256:${hex}`], '/c': [`sha256:${hex}`] });
    expect(ask(policy.digestIndex, '/a', digestOf(32, 9))).toBe(true);
    expect(policy.digests.get('/a')!.has(hex)).toBe(true);
    expect(ask(policy.digestIndex, '/b', digestOf(32, 9))).toBe(false);
    expect(ask(policy.digestIndex, '/c', digestOf(32, 9))).toBe(false);
  });
});
