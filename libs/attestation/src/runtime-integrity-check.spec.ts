import { createHash } from 'node:crypto';
import { attestImaMeasurements, buildImaEntry, type ImaEntry, parseRuntimePolicy, replayImaEntries, zeroPcr } from '@rackseal/ima';
import { observeRound } from './runtime-integrity-check';

const sha256 = (text: string) => createHash('sha256').update(text).digest();
const file = (path: string, content = path, index = 0): ImaEntry => buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256(content), name: path }, index);

/** A round judged by libs/ima over `entries`, the quote covering the first `covered` of them. */
function judged(entries: ImaEntry[], covered: number) {
  const quoted = replayImaEntries(entries.slice(0, covered), zeroPcr('sha256'), undefined, { bank: 'sha256' }).final;
  return attestImaMeasurements(undefined, { bank: 'sha256', bootTime: 'b', startIndex: 0, entries, quotedPcr10: quoted }, parseRuntimePolicy({ meta: { version: 1 }, excludes: ['.*'] }));
}

describe('observeRound (what --from-machine captures of a round)', () => {
  const entries = [file('/a', 'a', 0), file('/b', 'b', 1), file('/a', 'a', 2), file('/a', 'a2', 3), file('/c', 'c', 4)];

  it('keeps each covered file and digest once, nothing past the quote', () => {
    const round = observeRound(0, entries, judged(entries, 4), 100);
    // Each kept digest counted as the policy JSON holds it: `"/a":["<64 hex>"],` is 4 + 64 + 6 bytes.
    expect(round).toEqual({ digests: { '/a': [sha256('a').toString('hex'), sha256('a2').toString('hex')], '/b': [sha256('b').toString('hex')] }, imaBuf: {}, count: 3, bytes: 3 * 74, truncated: false });
  });

  it('stops at the room left and says it is truncated', () => {
    const round = observeRound(0, entries, judged(entries, 5), 2);
    expect(round).toMatchObject({ count: 2, truncated: true });
    expect(Object.keys(round.digests)).toEqual(['/a', '/b']);
  });

  it('stops at the bytes left too: 4 KiB paths fill the room long before 100,000 digests', () => {
    const long = Array.from({ length: 10 }, (_, i) => file(`/${String(i).repeat(4000)}`, String(i), i));
    const round = observeRound(0, long, judged(long, 10), 100_000, 3 * 4073);
    expect(round).toMatchObject({ count: 3, bytes: 3 * 4073, truncated: true });
    // Escaped as JSON escapes them: a control character counts six bytes, not one.
    const odd = [file('/\x1b[31m', 'x', 0)];
    expect(observeRound(0, odd, judged(odd, 1), 10).bytes).toBe(JSON.stringify('/\x1b[31m').length + 64 + 6);
  });

  it('keeps a path named __proto__ as data', () => {
    const odd = [file('__proto__', 'x', 0)];
    const round = observeRound(0, odd, judged(odd, 1), 10);
    expect(Object.getPrototypeOf(round.digests)).toBe(Object.prototype);
    expect(Object.keys(round.digests)).toEqual(['__proto__']);
  });

  it('keeps nothing when the list did not reach the quote', () => {
    const result = attestImaMeasurements(undefined, { bank: 'sha256', bootTime: 'b', startIndex: 0, entries, quotedPcr10: Buffer.alloc(32, 7) }, parseRuntimePolicy({ meta: { version: 1 }, excludes: ['.*'] }));
    expect(observeRound(0, entries, result, 100)).toEqual({ digests: {}, imaBuf: {}, count: 0, bytes: 0, truncated: false });
  });
});
