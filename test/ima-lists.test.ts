/**
 * libs/ima against real measurement lists — tpm2-tss's binary lists (the template digests its unit
 * test expects), Keylime's ASCII lists, signed entries, keys and runtime policies, rust-keylime's
 * 826-entry list — and synthetic lists for each verdict, the replay and the incremental state.
 * (test/ima-swtpm.test.ts checks the PCR 10 arithmetic against a real TPM.)
 */
import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  attestImaMeasurements,
  buildImaEntry,
  digestOf,
  entryExtend,
  evaluateImaEntry,
  evaluationContext,
  formatAsciiEntry,
  type ImaAttestationState,
  type ImaEntry,
  ImaParseError,
  imaKeyId,
  initialImaState,
  marshalBinaryEntry,
  parseAsciiMeasurementList,
  parseBinaryMeasurementList,
  parseRuntimePolicy,
  readImaState,
  replayImaEntries,
  RuntimePolicyError,
  zeroPcr,
} from '@rackseal/ima';
import { fixturePath } from './support/fixtures';

const fixture = (name: string): Buffer => readFileSync(fixturePath('ima', name));
const sha = (alg: string, data: string | Buffer): Buffer => createHash(alg).update(data).digest();

/** tpm2-tss test/unit/fapi-ima-eventlog.c: each entry's SHA-1 template digest and name, as the kernel logged them. */
const TPM2_TSS: Record<string, { length: number; entries: [string, string][] }> = {
  'tpm2-tss_sml-ima-ng-sha1.bin': {
    length: 558,
    entries: [
      ['1d8d532d463c9f8c205d0df7787669a85f93e260', 'boot_aggregate'],
      ['972d62ff5b3a74e89952e0980b2099eed49bf8f0', '/init'],
      ['c76ee54d77352bee745ce43829247ff1706886df', '/usr/bin/sh'],
      ['ef885dd41140c5fb993188f60a298c5a9b31d038', '/usr/lib/x86_64-linux-gnu/ld-2.31.so'],
      ['a8fe19f5a9773edebf7b7df90bf9ce38b071e684', '/etc/ld.so.cache'],
      ['0801daa94a2c43f41200143b319f19b28b43f745', '/usr/lib/x86_64-linux-gnu/libc-2.31.so'],
    ],
  },
  'tpm2-tss_sml-ima-sha1.bin': {
    length: 916,
    entries: [
      ['719de8e521439498e9b77f6ed41e230b9821111e', 'boot_aggregate'],
      ['a3ff2672a129ea092ec2d41b88daafe632a8b65a', '/init'],
      ['11fdfd51127b2a3853c55136d0c76411f6246892', '/usr/bin/sh'],
      ['7a89e5da2a7299c7b3d76fbbbd4727d13818cc9a', '/usr/lib/x86_64-linux-gnu/ld-2.31.so'],
      ['6d644a6a36001decfbc93ae98734473adc807c98', '/etc/ld.so.cache'],
      ['70ff9de3f9a80361cca4f13edc027150318116da', '/usr/lib/x86_64-linux-gnu/libc-2.31.so'],
      ['082ab538004eb50f2c8cdcbc8467037b11436ed6', '/conf/arch.conf'],
      ['0cf46ceded0ffc71df00612568f6679208bb43d1', '/conf/initramfs.conf'],
      ['37d29d0dbcfcc9b90fcd1986e452ab27a017e61a', '/scripts/functions'],
      ['b81750d408faeb879a02f14cd8f42253308686fa', '/scripts/init-top/ORDER'],
      ['47a8d6956a06cecf639af074b264bd1338c0942e', '/scripts/init-top/all_generic_ide'],
      ['21044c1265a4b298dfd97ead49c355817b1a2493', '/scripts/init-top/blacklist'],
    ],
  },
  'tpm2-tss_sml-ima-sig-sha256.bin': {
    length: 987,
    entries: [
      ['bcb0e518b79de0d7f2cd20b8a29a7092e65db7ef', 'boot_aggregate'],
      ['539fdb622d9bc29e698e8cb87ad654b318844987', '/init'],
      ['2675452da05e86c25345bc22d71b53fb1de3aea6', '/usr/bin/sh'],
      ['9b98ed341fd71c6841eadda983f0bd067d7aae61', '/usr/lib/x86_64-linux-gnu/ld-2.31.so'],
      ['4e1485e0515360012ae54a4e7775a09039da4cd6', '/etc/ld.so.cache'],
      ['dbfdd0da61d79f6185b053e793c5e56a85c23eee', '/usr/lib/x86_64-linux-gnu/libc-2.31.so'],
      ['4ca22ff0b5a3f5cec29d40b1a53c19b34b5e5d9a', '/conf/arch.conf'],
      ['9f51391fdcb905d92ca5ca433dd1a9945c883164', '/conf/initramfs.conf'],
      ['6b60a8edd48a777ac2e05fdcad20d2af09e8489c', '/scripts/functions'],
    ],
  },
};

describe('real binary lists (tpm2-tss)', () => {
  it.each(Object.keys(TPM2_TSS))('%s: each entry has the template digest tpm2-tss expects, and it is the SHA-1 of its template data', (file) => {
    const { length, entries: expected } = TPM2_TSS[file]!;
    const bytes = fixture(file);
    // The upstream files carry bytes after the last whole entry (a newline, or a cut-off header);
    // tpm2-tss's reader stops there, this one refuses them, naming the entry.
    expect(() => parseBinaryMeasurementList(bytes)).toThrow(ImaParseError);
    const err = (() => {
      try {
        parseBinaryMeasurementList(bytes);
      } catch (e) {
        return e as ImaParseError;
      }
      return undefined;
    })();
    expect(err?.entry).toBe(expected.length);
    const entries = parseBinaryMeasurementList(bytes.subarray(0, length));
    expect(entries.map((e) => [e.templateHash.toString('hex'), e.path])).toEqual(expected);
    for (const e of entries) {
      expect(e.pcr).toBe(10);
      expect(entryExtend(e, { bank: 'sha1' }).templateHashValid).toBe(true);
      expect(Buffer.concat([e.raw])).toEqual(marshalBinaryEntry(e));
    }
    expect(Buffer.concat(entries.map((e) => e.raw))).toEqual(bytes.subarray(0, length));
    // The binary and ASCII forms are the same entries: format each as its ASCII line and read it back.
    const ascii = parseAsciiMeasurementList(entries.map(formatAsciiEntry).join('\n') + '\n');
    expect(ascii.map((e) => e.templateData)).toEqual(entries.map((e) => e.templateData));
  });

  it('the legacy `ima` template hashes the name zero-padded to 256 bytes, and a different padding would not match', () => {
    const [first] = parseBinaryMeasurementList(fixture('tpm2-tss_sml-ima-sha1.bin').subarray(0, 916));
    expect(first!.templateName).toBe('ima');
    const unpadded = sha('sha1', Buffer.concat([first!.digest.digest, first!.name]));
    expect(unpadded.equals(first!.templateHash)).toBe(false);
    const padded = Buffer.alloc(276);
    first!.digest.digest.copy(padded);
    first!.name.copy(padded, 20);
    expect(sha('sha1', padded)).toEqual(first!.templateHash);
  });

  it('violations: an all-zero template hash is reported and extends all 0xFF (ima-sig, ima)', () => {
    const sig = parseBinaryMeasurementList(fixture('tpm2-tss_sml-ima-sig-sha256-invalidated.bin'));
    expect(sig.map((e) => [e.path, e.violation])).toEqual([
      ['boot_aggregate', false],
      ['/init', true],
    ]);
    expect(entryExtend(sig[1]!, { bank: 'sha256' }).extend).toEqual(Buffer.alloc(32, 0xff));
    expect(entryExtend(sig[1]!, { bank: 'sha1' }).extend).toEqual(Buffer.alloc(20, 0xff));
    const legacy = parseBinaryMeasurementList(fixture('tpm2-tss_sml-ima-sha1-invalidated.bin'));
    expect(legacy.map((e) => [e.templateName, e.path, e.violation])).toEqual([['ima', 'boot_aggregate', true]]);
  });

  it('a truncated real list is refused with the entry and field named', () => {
    // Upstream's ima-ng "invalidated" sample is itself cut short (tpm2-tss skips it: "TOODO check").
    expect(() => parseBinaryMeasurementList(fixture('tpm2-tss_sml-ima-ng-sha1-invalidated.bin'))).toThrow(
      new ImaParseError(0, 'template_data', 38, 'needs 49 byte(s), 48 left'),
    );
    const list = fixture('tpm2-tss_sml-ima-ng-sha1.bin').subarray(0, 558);
    for (const cut of [1, 4, 30, 100, 557]) {
      expect(() => parseBinaryMeasurementList(list.subarray(0, cut))).toThrow(ImaParseError);
    }
  });
});

describe('a parsed binary entry: offsets into the list, its fields made when read', () => {
  const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();
  const written: ImaEntry[] = [
    buildImaEntry({ template: 'ima', algorithm: 'sha1', digest: sha('sha1', Buffer.from('legacy')), name: '/usr/bin/legacy' }, 0),
    buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha256('ng'), name: '/usr/bin/ng' }, 1),
    buildImaEntry({ template: 'ima-sig', algorithm: 'sha512', digest: sha('sha512', Buffer.from('sig')), name: '/usr/bin/signed', signature: Buffer.from([3, 2, 4, 0, 0, 0, 1]) }, 2),
    buildImaEntry({ template: 'ima-sig', algorithm: 'sha1', digest: sha('sha1', Buffer.from('unsigned')), name: '/usr/bin/unsigned', signature: Buffer.alloc(0) }, 3),
    buildImaEntry({ template: 'ima-buf', algorithm: 'sha256', digest: sha256('kexec'), name: 'kexec-cmdline', buffer: Buffer.from('root=/dev/sda1') }, 4),
    buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: Buffer.alloc(32), name: '/var/log/open-for-write', violation: true }, 5),
    buildImaEntry({ pcr: 11, template: 'ima-ng', algorithm: 'md5', digest: Buffer.alloc(16, 7), name: Buffer.from([0x2f, 0xff, 0xfe]) }, 6),
  ];
  const fields = (e: ImaEntry) => ({
    index: e.index,
    pcr: e.pcr,
    templateHash: e.templateHash.toString('hex'),
    templateName: e.templateName,
    templateData: e.templateData.toString('hex'),
    digest: [e.digest.algorithm, e.digest.digest.toString('hex')],
    name: e.name.toString('hex'),
    path: e.path,
    signature: e.signature?.toString('hex'),
    buffer: e.buffer?.toString('hex'),
    violation: e.violation,
    raw: e.raw.toString('hex'),
  });

  it('reads every field of every template as the entry it was written from', () => {
    const list = Buffer.concat(written.map(marshalBinaryEntry));
    const parsed = parseBinaryMeasurementList(list);
    expect(parsed.map(fields)).toEqual(written.map(fields));
    // The invalid UTF-8 name decodes as the written entry's does (U+FFFD), and its bytes are kept.
    expect(parsed[6]!.name).toEqual(Buffer.from([0x2f, 0xff, 0xfe]));
    // Views into the list, not copies.
    expect(parsed[1]!.templateData.buffer).toBe(list.buffer);
    // As JSON: the entry's fields, as a built entry writes them — not its offsets and the whole list.
    expect(parsed.map((e) => JSON.stringify(e))).toEqual(written.map((e) => JSON.stringify(e)));
    expect(JSON.stringify(parsed[1])).not.toContain('"list"');
  });

  it('compares the logged template hash in place: equal, one byte off, another length', () => {
    const [entry] = parseBinaryMeasurementList(marshalBinaryEntry(written[1]!));
    const logged = Buffer.from(written[1]!.templateHash);
    expect(entry!.templateHashIs(logged)).toBe(true);
    logged[19] = logged[19]! ^ 1;
    expect(entry!.templateHashIs(logged)).toBe(false);
    expect(entry!.templateHashIs(written[1]!.templateHash.subarray(0, 19))).toBe(false);
    expect(entry!.templateHashIs(Buffer.concat([written[1]!.templateHash, Buffer.alloc(1)]))).toBe(false);
  });
});

describe('real ASCII lists (Keylime, rust-keylime)', () => {
  it("rust-keylime's 826-entry list: every template hash is the SHA-1 of the rebuilt template data", () => {
    const entries = parseAsciiMeasurementList(fixture('rust-keylime-ascii_runtime_measurements'));
    expect(entries).toHaveLength(826);
    expect(entries[0]!.path).toBe('boot_aggregate');
    expect(entries.filter((e) => !entryExtend(e, { bank: 'sha1' }).templateHashValid)).toEqual([]);
    // Whole-list replay in SHA-1 equals folding the logged template hashes, as Keylime's iterative test does.
    let pcr = zeroPcr('sha1');
    for (const e of entries) {
      pcr = sha('sha1', Buffer.concat([pcr, e.templateHash]));
    }
    expect(replayImaEntries(entries, zeroPcr('sha1'), pcr, { bank: 'sha1' }).matchedAt).toBe(826);
    // The binary form of the same list parses back to the same entries.
    const binary = Buffer.concat(entries.map(marshalBinaryEntry));
    expect(parseBinaryMeasurementList(binary).map((e) => e.templateData)).toEqual(entries.map((e) => e.templateData));
  });

  it("Keylime's lists and signed entries: template hashes check, ima-sig signatures verify with Keylime's RSA and secp256k1 keys", () => {
    for (const name of ['keylime-ima-log-sha1', 'keylime-ima-log-sha256', 'keylime-measurements.txt', 'keylime-signatures.txt', 'keylime-keyrings.txt']) {
      const entries = parseAsciiMeasurementList(fixture(name));
      expect(entries.length).toBeGreaterThan(0);
      expect(entries.filter((e) => !e.violation && !entryExtend(e, { bank: 'sha1' }).templateHashValid).map((e) => e.path)).toEqual([]);
    }
    const keys = ['keylime-rsa2048pub.pem', 'keylime-secp256k1.pem'].map((f) => createPublicKey(fixture(f)));
    // Keylime's test states the key ids the signatures carry (keyids [4081397027, 1394556965]).
    expect(keys.map(imaKeyId)).toEqual([0xf3452d23, 0x531f4025]);
    const verificationKeys = JSON.stringify({ pubkeys: keys.map((k) => k.export({ type: 'spki', format: 'der' }).toString('base64')) });
    const policy = parseRuntimePolicy({ meta: { version: 1 }, 'verification-keys': verificationKeys });
    const signed = parseAsciiMeasurementList(fixture('keylime-signatures.txt'));
    const result = attestImaMeasurements(undefined, evidence(signed, 'boot-1'), policy);
    expect(result.verdicts.map((v) => [v.path, v.kind, v.rule])).toEqual([
      ['/usr/bin/dd', 'allowed', 'signature key 0xf3452d23'],
      ['/usr/bin/zmore', 'allowed', 'signature key 0x531f4025'],
    ]);
    expect(result.outcome).toBe('verified');
  });

  it("Keylime's malformed signature (wrong size field) fails even when the path is excluded or its digest allowed", () => {
    const edited = parseAsciiMeasurementList(fixture('keylime-bad-signatures.txt'));
    // Keylime edited the size field after the kernel logged the line: the template hash gives it away first.
    const open = parseRuntimePolicy({ meta: { version: 1 }, excludes: ['/usr/bin/zmore'] });
    expect(attestImaMeasurements(undefined, evidence(edited, 'b'), open).failures.map((v) => v.kind)).toEqual(['template-hash-mismatch']);
    // The same malformed signature in an entry whose template hash is consistent (as a kernel would log it):
    const e = edited[0]!;
    const bad = [buildImaEntry({ template: 'ima-sig', algorithm: e.digest.algorithm, digest: e.digest.digest, name: e.name, signature: e.signature! })];
    for (const policy of [
      { meta: { version: 1 }, excludes: ['/usr/bin/zmore'] },
      { meta: { version: 1 }, digests: { '/usr/bin/zmore': ['b8ae0b8dd04a5935cd8165aa2260cd11b658bd71629bdb52256a675a1f73907b'] } },
    ]) {
      const result = attestImaMeasurements(undefined, evidence(bad, 'b'), parseRuntimePolicy(policy));
      expect(result.failures.map((v) => [v.path, v.kind])).toEqual([['/usr/bin/zmore', 'bad-signature']]);
      expect(result.failures[0]!.detail).toMatch(/size field/);
    }
  });

  it("Keylime's keyring entry: the key's digest in `keyrings` allows it and the key then verifies signatures; an ignored keyring is not learned", () => {
    const keyring = parseAsciiMeasurementList(fixture('keylime-keyrings.txt'));
    expect(keyring[0]!.templateName).toBe('ima-buf');
    const policy = parseRuntimePolicy(fixture('keylime-runtime-policy-test.json'));
    const result = attestImaMeasurements(undefined, evidence(keyring, 'k'), policy);
    expect(result.verdicts.map((v) => [v.path, v.kind, v.rule])).toEqual([['.ima', 'allowed', 'keyrings']]);
    expect(result.state.learnedKeys).toHaveLength(1);
    const ignored = parseRuntimePolicy({ ...JSON.parse(fixture('keylime-runtime-policy-test.json').toString()), ima: { ignored_keyrings: ['*'], log_hash_alg: 'sha1', dm_policy: null } });
    const r2 = attestImaMeasurements(undefined, evidence(keyring, 'k'), ignored);
    expect(r2.verdicts[0]!.rule).toBe('ima.ignored_keyrings');
    expect(r2.state.learnedKeys).toEqual([]);
  });

  it("Keylime's runtime policies import as written by keylime-policy, and decide Keylime's lists", () => {
    const sha256Policy = parseRuntimePolicy(fixture('keylime-policy-sha256'));
    expect(sha256Policy.meta).toEqual({ version: 1, generator: 3, timestamp: '2024-09-12 13:44:44.797331' });
    expect([...sha256Policy.digests.keys()]).toEqual(['/base_policy_data']);
    const log = parseAsciiMeasurementList(fixture('keylime-ima-log-sha256'));
    const result = attestImaMeasurements(undefined, evidence(log, 'x'), sha256Policy);
    expect(result.verdicts.map((v) => [v.path, v.kind])).toEqual([
      ['boot_aggregate', 'not-in-allowlist'],
      ['/data', 'not-in-allowlist'],
    ]);
    // Keylime's test policy (generator 2, 21 paths, the .ima keyring) and its signing test's policy.
    const test = parseRuntimePolicy(fixture('keylime-runtime-policy-test.json'));
    expect(test.digests.size).toBe(21);
    expect([...test.digests.get('/boot/grub2/i386-pc/testload.mod')!]).toEqual(['68e1d012e3f193dcde955e6ffbbc80e22b0f8778']);
    expect(parseRuntimePolicy(fixture('keylime-runtime-policy.json')).digests.size).toBe(7);
    // Keylime's first list: allowed by a policy listing its digests, boot_aggregate through the quoted PCRs' value.
    const measurements = parseAsciiMeasurementList(fixture('keylime-measurements.txt'));
    const policy = parseRuntimePolicy({
      meta: { version: 1 },
      digests: Object.fromEntries(measurements.filter((e) => e.path !== 'boot_aggregate').map((e) => [e.path, [e.digest.digest.toString('hex')]])),
    });
    const bootAggregate = measurements[0]!.digest.digest.toString('hex');
    const ok = attestImaMeasurements(undefined, { ...evidence(measurements, 'm'), bootAggregates: [bootAggregate] }, policy);
    expect(ok.outcome).toBe('verified');
    expect(ok.verdicts[0]!.rule).toBe('boot_aggregate of the quoted PCRs');
  });
});

/** Evidence for a whole list whose quote covers all of it. */
function evidence(entries: readonly ImaEntry[], bootTime: string, bank: 'sha1' | 'sha256' = 'sha1') {
  return { bank, bootTime, startIndex: entries[0]?.index ?? 0, entries, quotedPcr10: replayImaEntries(entries, zeroPcr(bank), undefined, { bank }).final };
}

/** A synthetic ima-ng list of `count` files, with a policy allowing each of them. */
function syntheticList(count: number) {
  const entries = Array.from({ length: count }, (_, i) =>
    buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', `content ${i}`), name: i === 0 ? 'boot_aggregate' : `/usr/bin/tool-${i}` }, i),
  );
  const policy = {
    meta: { version: 1, generator: 3 },
    release: 0,
    digests: Object.fromEntries(entries.map((e) => [e.path, [e.digest.digest.toString('hex')]])),
    excludes: ['/tmp/.*', '^/var/log/'],
    keyrings: {},
    ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: null },
    'ima-buf': {},
    'verification-keys': '',
  };
  return { entries, policy };
}

const reindex = (entries: readonly ImaEntry[], from = 0): ImaEntry[] => entries.map((e, i) => ({ ...e, index: from + i }));
const pcrAfter = (entries: readonly ImaEntry[], bank: 'sha1' | 'sha256' = 'sha256', start = zeroPcr(bank)) => replayImaEntries(entries, start, undefined, { bank }).final;

describe('verdicts, each naming the file, digest and rule', () => {
  const { entries, policy: policyJson } = syntheticList(20);
  const policy = parseRuntimePolicy(JSON.stringify(policyJson));
  const attest = (list: readonly ImaEntry[], quoted = pcrAfter(list)) =>
    attestImaMeasurements(undefined, { bank: 'sha256', bootTime: 'boot', startIndex: 0, entries: list, quotedPcr10: quoted }, policy);

  it('the list as measured: verified, every entry allowed by its digests rule', () => {
    const result = attest(entries);
    expect(result.outcome).toBe('verified');
    expect(result.coveredEntries).toBe(20);
    expect(result.verdicts.every((v) => v.kind === 'allowed')).toBe(true);
    expect(result.verdicts[3]!.rule).toBe('digests');
  });

  it('the verdicts built when read are the ones judging each entry alone gives, and the failures are the failing ones in order', () => {
    const more = [
      buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'x'), name: '/tmp/build/a.out' }),
      buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'evil'), name: '/usr/local/bin/miner' }),
      buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'patched'), name: '/usr/bin/tool-5' }),
      buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'content 7'), name: '/usr/bin/tool-7' }),
    ];
    const list = reindex([...entries, ...more]);
    const result = attest(list);
    const context = evaluationContext(policy);
    const alone = list.map((e) => evaluateImaEntry(e, true, policy, context));
    expect(result.outcome).toBe('failed');
    expect(result.verdicts).toEqual(alone);
    expect(result.failures).toEqual(alone.filter((v) => !v.ok));
    expect(result.failures.map((v) => [v.index, v.kind])).toEqual([
      [21, 'not-in-allowlist'],
      [22, 'digest-mismatch'],
    ]);
    expect(result.verdicts.slice(19).map((v) => [v.index, v.kind, v.rule, v.path, v.digest])).toEqual([
      [19, 'allowed', 'digests', '/usr/bin/tool-19', `sha256:${sha('sha256', 'content 19').toString('hex')}`],
      [20, 'excluded', 'excludes[0] "/tmp/.*"', '/tmp/build/a.out', `sha256:${sha('sha256', 'x').toString('hex')}`],
      [21, 'not-in-allowlist', 'digests', '/usr/local/bin/miner', `sha256:${sha('sha256', 'evil').toString('hex')}`],
      [22, 'digest-mismatch', 'digests', '/usr/bin/tool-5', `sha256:${sha('sha256', 'patched').toString('hex')}`],
      [23, 'allowed', 'digests', '/usr/bin/tool-7', `sha256:${sha('sha256', 'content 7').toString('hex')}`],
    ]);
  });

  it('a listed file an exclude also matches: it passes without the matcher running, and its verdict, built when read, names the exclude (Keylime checks the excludes first)', () => {
    const both = parseRuntimePolicy(JSON.stringify({ ...policyJson, excludes: ['/tmp/.*', '/usr/bin/tool-1[0-9]$'] }));
    let matched = 0;
    const counting = { ...both, excludeMatcher: { ...both.excludeMatcher, match: (path: string, budget?: { nfaVisits: number }) => ((matched += 1), both.excludeMatcher.match(path, budget)) } } as typeof both;
    const result = attestImaMeasurements(undefined, { bank: 'sha256', bootTime: 'boot', startIndex: 0, entries, quotedPcr10: pcrAfter(entries) }, counting);
    expect(result.outcome).toBe('verified');
    expect(matched).toBe(0);
    expect(result.verdicts.slice(9, 12).map((v) => [v.path, v.kind, v.rule])).toEqual([
      ['/usr/bin/tool-9', 'allowed', 'digests'],
      ['/usr/bin/tool-10', 'excluded', 'excludes[1] "/usr/bin/tool-1[0-9]$"'],
      ['/usr/bin/tool-11', 'excluded', 'excludes[1] "/usr/bin/tool-1[0-9]$"'],
    ]);
    const context = evaluationContext(counting);
    expect(result.verdicts).toEqual(entries.map((e) => evaluateImaEntry(e, true, counting, context)));
  });

  it('a file not in the allowlist', () => {
    const extra = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'evil'), name: '/usr/local/bin/miner' }, 20);
    const result = attest([...entries, extra]);
    expect(result.outcome).toBe('failed');
    expect(result.failures).toEqual([
      { index: 20, kind: 'not-in-allowlist', ok: false, template: 'ima-ng', path: '/usr/local/bin/miner', digest: `sha256:${sha('sha256', 'evil').toString('hex')}`, rule: 'digests' },
    ]);
    expect(result.state).toEqual(initialImaState('sha256', null));
  });

  it('a digest changed', () => {
    const changed = reindex([...entries.slice(0, 5), buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'patched'), name: '/usr/bin/tool-5' }), ...entries.slice(6)]);
    const result = attest(changed);
    expect(result.failures.map((v) => [v.index, v.kind, v.path, v.digest, v.rule, v.expected])).toEqual([
      [5, 'digest-mismatch', '/usr/bin/tool-5', `sha256:${sha('sha256', 'patched').toString('hex')}`, 'digests', [sha('sha256', 'content 5').toString('hex')]],
    ]);
  });

  it('an excluded path passes with the pattern named (Python re.match semantics: anchored at the start only)', () => {
    const tmp = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'x'), name: '/tmp/build/a.out' }, 20);
    const log = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'y'), name: '/var/log/x' }, 21);
    const notTmp = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'z'), name: '/home/tmp/x' }, 22);
    const result = attest([...entries, tmp, log, notTmp]);
    expect(result.verdicts.slice(20).map((v) => [v.path, v.kind, v.rule])).toEqual([
      ['/tmp/build/a.out', 'excluded', 'excludes[0] "/tmp/.*"'],
      ['/var/log/x', 'excluded', 'excludes[1] "^/var/log/"'],
      ['/home/tmp/x', 'not-in-allowlist', 'digests'],
    ]);
  });

  it('a violation entry fails, names the file, and its extend (all 0xFF) is what reaches PCR 10', () => {
    const violation = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: Buffer.alloc(32), name: '/usr/bin/tool-3', violation: true }, 20);
    const list = [...entries, violation];
    const manual = sha('sha256', Buffer.concat([pcrAfter(entries), Buffer.alloc(32, 0xff)]));
    expect(pcrAfter(list)).toEqual(manual);
    const result = attest(list, manual);
    expect(result.coveredEntries).toBe(21);
    expect(result.failures.map((v) => [v.index, v.kind, v.path])).toEqual([[20, 'violation', '/usr/bin/tool-3']]);
  });

  it('a reordered list does not reach the quoted PCR 10', () => {
    const swapped = reindex([entries[0]!, entries[2]!, entries[1]!, ...entries.slice(3)]);
    const result = attest(swapped, pcrAfter(entries));
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/does not reach the quoted PCR 10/);
    expect(result.coveredEntries).toBeNull();
  });

  it('a list that stops short of the quote (entries withheld) does not reach PCR 10; a quote behind the list matches a prefix', () => {
    expect(attest(entries.slice(0, 15), pcrAfter(entries)).reason).toMatch(/does not reach/);
    const behind = attest(entries, pcrAfter(entries.slice(0, 12)));
    expect(behind.outcome).toBe('verified');
    expect(behind.coveredEntries).toBe(12);
    expect(behind.state).toMatchObject({ nextEntry: 12, pendingEntries: 8, pcr10: pcrAfter(entries.slice(0, 12)).toString('hex') });
  });

  it('an entry whose template data was edited (template hash no longer its hash) fails', () => {
    const forged = { ...entries[4]!, templateData: Buffer.from(entries[4]!.templateData) };
    forged.templateData[forged.templateData.length - 2] = forged.templateData[forged.templateData.length - 2]! ^ 1;
    const list = reindex([...entries.slice(0, 4), forged, ...entries.slice(5)]);
    const result = attest(list);
    expect(result.failures.map((v) => [v.index, v.kind])).toEqual([[4, 'template-hash-mismatch']]);
  });

  it('an entry for another PCR fails as unexpected-pcr', () => {
    const other = buildImaEntry({ pcr: 11, template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'content 1'), name: '/usr/bin/tool-1' }, 20);
    const result = attest([...entries, other]);
    expect(result.coveredEntries).toBe(20);
    expect(result.failures.map((v) => [v.index, v.kind, v.path])).toEqual([[20, 'unexpected-pcr', '/usr/bin/tool-1']]);
  });
});

describe('incremental attestation', () => {
  const { entries, policy: policyJson } = syntheticList(300);
  const policy = parseRuntimePolicy(policyJson);
  const round = (state: ImaAttestationState | undefined, from: number, to: number, quotedUpTo: number, bootTime = 'boot-1') =>
    attestImaMeasurements(state, { bank: 'sha256', bootTime, startIndex: from, entries: entries.slice(from, to), quotedPcr10: pcrAfter(entries.slice(0, quotedUpTo)) }, policy);

  it('continues from the state with only the new entries, and the state survives JSON', () => {
    const first = round(undefined, 0, 100, 100);
    expect(first.outcome).toBe('verified');
    const stored = readImaState(JSON.parse(JSON.stringify(first.state)));
    expect(stored).toEqual(first.state);
    const second = round(stored, 100, 200, 200);
    expect(second.outcome).toBe('verified');
    expect(second.verdicts.map((v) => v.index)).toEqual(Array.from({ length: 100 }, (_, i) => 100 + i));
    expect(second.state).toMatchObject({ nextEntry: 200, pendingEntries: 0, pcr10: pcrAfter(entries.slice(0, 200)).toString('hex') });
    // No new entries: the quote must still equal the stored PCR 10.
    expect(round(second.state, 200, 200, 200).outcome).toBe('verified');
    expect(round(second.state, 200, 200, 199).outcome).toBe('failed');
  });

  it('a quote lagging the list leaves the tail for next round; a quote that does not catch up with that tail fails', () => {
    const lagging = round(undefined, 0, 150, 140);
    expect(lagging.state).toMatchObject({ nextEntry: 140, pendingEntries: 10 });
    expect(round(lagging.state, 140, 160, 160).outcome).toBe('verified');
    const stuck = round(lagging.state, 140, 160, 145);
    expect(stuck.outcome).toBe('failed');
    expect(stuck.reason).toMatch(/not catching up/);
  });

  it('a window that does not start where the state expects fails and resets', () => {
    const first = round(undefined, 0, 100, 100);
    const skipped = round(first.state, 120, 200, 200);
    expect(skipped.outcome).toBe('failed');
    expect(skipped.reason).toMatch(/start at 120, the state expects 100/);
    expect(skipped.state.nextEntry).toBe(0);
  });

  it('a reboot resets: a window is refused (restart from entry 0), the whole list of the new boot verifies', () => {
    const first = round(undefined, 0, 100, 100);
    const rebooted = round(first.state, 100, 200, 200, 'boot-2');
    expect(rebooted.outcome).toBe('restart');
    expect(rebooted.state).toEqual(initialImaState('sha256', 'boot-2'));
    const full = round(rebooted.state, 0, 50, 50, 'boot-2');
    expect(full.outcome).toBe('verified');
    expect(full.state).toMatchObject({ bootTime: 'boot-2', nextEntry: 50 });
  });

  it('after a failure the next round starts from zero', () => {
    const failed = round(round(undefined, 0, 100, 100).state, 100, 200, 150 + 77);
    expect(failed.outcome).toBe('failed');
    expect(round(failed.state, 100, 200, 200).outcome).toBe('restart');
    expect(round(failed.state, 0, 200, 200).outcome).toBe('verified');
  });

  it('readImaState refuses what is not a state', () => {
    expect(readImaState({ ...initialImaState('sha1'), pcr10: 'zz' })).toBeUndefined();
    expect(readImaState({ ...initialImaState('sha1'), nextEntry: -1 })).toBeUndefined();
    expect(readImaState(null)).toBeUndefined();
  });
});

describe('runtime policy validation', () => {
  const base = { meta: { version: 1 } };
  it.each([
    [{ ...base, excludes: ['(a|a)*$'] }, 'excludes[0]', null],
    [{ ...base, excludes: ['(?=x)'] }, 'excludes[0]', /lookahead/],
    [{ ...base, excludes: ['(a)\\1'] }, 'excludes[0]', /backreference/],
    [{ ...base, excludes: [''] }, 'excludes[0]', /empty pattern/],
    [{ ...base, excludes: ['a{2000}'] }, 'excludes[0]', /above 1000/],
    [{ ...base, excludes: ['a**'] }, 'excludes[0]', /multiple repeat/],
    [{ ...base, digests: { '/bin/x': ['ABCDEF'] } }, 'digests["/bin/x"]', /hex digest/],
    [{ ...base, digests: { '/bin/x': [] } }, 'digests["/bin/x"]', /list of 1/],
    [{ ...base, extra: 1 }, 'extra', /unknown field/],
    [{ meta: { version: 2 } }, 'meta.version', /must be 1/],
    [{ ...base, ima: { ignored_keyrings: [], log_hash_alg: 'md5', dm_policy: null } }, 'ima.log_hash_alg', /one of/],
    [{ ...base, ima: { ignored_keyrings: [], log_hash_alg: 'sha1', dm_policy: {} } }, 'ima.dm_policy', /not supported/],
    [{ ...base, 'verification-keys': '{"pubkeys": ["AAAA"]}' }, 'verification-keys.pubkeys[0]', /SubjectPublicKeyInfo/],
  ])('refuses %j at %s', (policy, field, reason) => {
    let error: unknown;
    try {
      parseRuntimePolicy(policy);
    } catch (e) {
      error = e;
    }
    if (reason === null) {
      // (a|a)*$ is exponential for a backtracking engine; here it is accepted and linear.
      expect(error).toBeUndefined();
      return;
    }
    expect(error).toBeInstanceOf(RuntimePolicyError);
    expect((error as RuntimePolicyError).field).toBe(field);
    expect((error as RuntimePolicyError).reason).toMatch(reason);
  });

  it('catastrophic patterns stay linear: (a|a)*$, (a*)*b and .*.*.*.*x against 4,000-character paths', () => {
    const policy = parseRuntimePolicy({ meta: { version: 1 }, excludes: ['(a|a)*$', '(a*)*b', '.*.*.*.*.*.*x'] });
    const path = 'a'.repeat(4000) + '!';
    // A backtracking engine does not return from these in any useful time; the NFA visits each character once.
    expect(policy.excludeMatcher.match(path)).toBeUndefined();
    expect(policy.excludeMatcher.match('a'.repeat(4000))).toBe(0);
    expect(policy.excludeMatcher.match('aaab')).toBe(1);
    expect(policy.excludeMatcher.match('zzz' + 'a'.repeat(4000) + 'x')).toBe(2);
  });

  it('exclude matching follows Python re.match on the syntax it accepts (the pattern named is one whose match ends first)', () => {
    const patterns = ['/usr/lib/[^/]+\\.so(\\.\\d+)*$', '(?:/opt|/srv)/\\w+/', '/x{2,3}y', '\\A/boot/.*\\Z', 'a|^/b'];
    const m = parseRuntimePolicy({ meta: { version: 1 }, excludes: patterns }).excludeMatcher;
    // The same patterns in JavaScript's syntax, anchored at the start as re.match is (shared syntax, same answers).
    const js = [/^\/usr\/lib\/[^/]+\.so(\.\d+)*$/u, /^(?:\/opt|\/srv)\/\w+\//, /^\/x{2,3}y/, /^\/boot\/.*$/, /^(a|\/b)/];
    const cases: [string, number | undefined][] = [
      ['/usr/lib/libc.so.6', 0],
      ['/usr/lib/libc.so.6.x', undefined],
      ['/usr/lib/sub/libc.so', undefined],
      ['/opt/app/bin', 1],
      ['/srv/-/bin', undefined],
      ['/xxy', 2],
      ['/xxxxy', undefined],
      ['/boot/vmlinuz', 4],
      ['abc', 4],
      ['/bin', 4],
      ['x/b', undefined],
      ['/usr/lib/libé.so', 0],
    ];
    expect(cases.map(([path]) => [path, m.match(path)])).toEqual(cases);
    for (const [path, index] of cases) {
      expect([path, js.some((r) => r.test(path))]).toEqual([path, index !== undefined]);
      if (index !== undefined) {
        expect([path, js[index]!.test(path)]).toEqual([path, true]);
      }
    }
  });

  it('digests may be tagged "alg:hex" and then match only that algorithm', () => {
    const entry = buildImaEntry({ template: 'ima-ng', algorithm: 'sha256', digest: sha('sha256', 'a'), name: '/a' });
    const hex = entry.digest.digest.toString('hex');
    for (const [listed, kind] of [
      [`sha256:${hex}`, 'allowed'],
      [hex, 'allowed'],
    ] as const) {
      const policy = parseRuntimePolicy({ meta: { version: 1 }, digests: { '/a': [listed] } });
      expect(attestImaMeasurements(undefined, evidence([entry], 'b'), policy).verdicts[0]!.kind).toBe(kind);
    }
    expect(digestOf('sha256', Buffer.from('a'))).toEqual(entry.digest.digest);
  });
});
