/**
 * libs/ima PathDigestIndex: the runtime policy's digests list keyed by the paths' bytes, which a round
 * asks of nearly every entry of a binary list, read in place. Its answers (true: listed with this
 * digest; false: judge in full; undefined: ask the Map) against the policy's Map, its probe bound
 * under a policy of colliding paths, and that a whole round over such a policy still decides as the
 * Map does. (test/ima-lazy-verdicts.test.ts holds the shortcut to the full judgement on random lists.)
 */
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

  it(`the first ${PathDigestIndex.MAX_PROBES} are indexed, the rest left out (false: judged in full), so no lookup probes more than ${PathDigestIndex.MAX_PROBES} slots`, () => {
    const answers = colliding.map((p) => ask(policy.digestIndex, p, sha256(p)));
    expect(answers.slice(0, PathDigestIndex.MAX_PROBES)).toEqual(Array(PathDigestIndex.MAX_PROBES).fill(true));
    expect(answers.slice(PathDigestIndex.MAX_PROBES)).toEqual(Array(40 - PathDigestIndex.MAX_PROBES).fill(false));
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
