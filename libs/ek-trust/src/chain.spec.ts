import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { verifyCaChain, verifyEkChain, type ChainResult } from './chain';
import { TrustStore } from './trust-store';
import {
  basicConstraints,
  type CaSpec,
  ekCertificateEku,
  issueCertificate,
  keyUsage,
  makeCa,
  makeEkCertificate,
  type NameSpec,
  type TestCa,
} from './testing/certificate-builder';

// Chain building over certificates made here (testing/certificate-builder.ts signs with node:crypto
// over the exact tbsCertificate it builds), so every validity date and every name can be chosen.

const DAY = 86_400_000;
const NOW = new Date('2025-06-01T00:00:00Z');
const LONG_AGO = new Date('2015-01-01T00:00:00Z');
const FAR = new Date('2045-01-01T00:00:00Z');

const ec = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'P-256' });

function ca(subject: string, issuer?: TestCa, extra: Partial<CaSpec> = {}): TestCa {
  return makeCa({ subject: [[['O', 'Vendor']], [['CN', subject]]], keys: ec(), issuer, notBefore: LONG_AGO, notAfter: FAR, ...extra });
}

function ek(issuer: TestCa, extra: Partial<Parameters<typeof makeEkCertificate>[0]> = {}): Buffer {
  return makeEkCertificate({ issuer, publicKey: ec().publicKey, notBefore: LONG_AGO, notAfter: FAR, ...extra });
}

function storeOf(...cas: (TestCa | Buffer)[]): TrustStore {
  const store = new TrustStore();
  for (const c of cas) {
    const result = store.add(Buffer.isBuffer(c) ? c : c.der);
    expect(result.status).toBe('added');
  }
  return store;
}

function subjects(result: ChainResult): string[] {
  if (!result.ok) {
    throw new Error(`expected a chain, got ${result.reason}: ${result.message}`);
  }
  return result.chain.map((l) => l.subject);
}

describe('verifyEkChain', () => {
  const root = ca('Root');
  const intermediate = ca('Intermediate', root, { pathLength: 0 });
  const leaf = ek(intermediate);

  it('builds leaf → intermediate → root from the store, leaf first, with fingerprints, sources and kinds', () => {
    const result = verifyEkChain(leaf, { store: storeOf(root, intermediate), now: NOW, ekGraceDays: 0 });
    expect(subjects(result)).toEqual(['', 'O=Vendor, CN=Intermediate', 'O=Vendor, CN=Root']);
    expect(result.ok && result.chain.map((l) => [l.source, l.kind])).toEqual([
      ['leaf', 'leaf'],
      ['store', 'intermediate'],
      ['store', 'root'],
    ]);
    expect(result.ok && result.chain.every((l) => /^[0-9a-f]{64}$/.test(l.fingerprint))).toBe(true);
    expect(result.ok && result.graceApplied).toEqual([]);
  });

  it('takes intermediates from the request when the store holds only the root', () => {
    const result = verifyEkChain(leaf, { store: storeOf(root), extraIntermediates: [intermediate.der], now: NOW, ekGraceDays: 0 });
    expect(result.ok && result.chain.map((l) => l.source)).toEqual(['leaf', 'extra', 'store']);
  });

  it('reports untrusted-root naming the missing issuer', () => {
    const result = verifyEkChain(leaf, { store: storeOf(root), now: NOW, ekGraceDays: 0 });
    expect(result).toMatchObject({
      ok: false,
      reason: 'untrusted-root',
      missingIssuer: 'O=Vendor, CN=Intermediate',
      message: 'issuer "O=Vendor, CN=Intermediate" of "" is not a trusted CA',
    });
  });

  it('never treats an intermediate from the request as an anchor, nor a self-signed root from the request', () => {
    const intermediateOnly = verifyEkChain(leaf, { store: new TrustStore(), extraIntermediates: [intermediate.der], now: NOW, ekGraceDays: 0 });
    expect(intermediateOnly).toMatchObject({ ok: false, reason: 'untrusted-root', missingIssuer: 'O=Vendor, CN=Root' });
    const withRoot = verifyEkChain(leaf, { store: new TrustStore(), extraIntermediates: [intermediate.der, root.der], now: NOW, ekGraceDays: 0 });
    expect(withRoot).toMatchObject({ ok: false, reason: 'untrusted-root', message: '"O=Vendor, CN=Root" is self-signed and not a trusted root' });
  });

  it('a pinned intermediate ends the chain; unpinned it does not', () => {
    const store = storeOf(intermediate);
    expect(verifyEkChain(leaf, { store, now: NOW, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'untrusted-root' });
    store.setAnchor(store.entries()[0]!.fingerprint, true);
    expect(subjects(verifyEkChain(leaf, { store, now: NOW, ekGraceDays: 0 }))).toEqual(['', 'O=Vendor, CN=Intermediate']);
  });

  it('excludes disabled CAs, also when the request supplies the same certificate', () => {
    const store = storeOf(root, intermediate);
    const fp = store.entries()[1]!.fingerprint;
    store.disable(fp);
    const result = verifyEkChain(leaf, { store, extraIntermediates: [intermediate.der], now: NOW, ekGraceDays: 0 });
    expect(result).toMatchObject({ ok: false, reason: 'disabled-ca', message: `CA "O=Vendor, CN=Intermediate" is disabled (${fp})`, disabledCa: { fingerprint: fp } });
    store.enable(fp);
    expect(verifyEkChain(leaf, { store, now: NOW, ekGraceDays: 0 }).ok).toBe(true);
    const rootFp = store.entries()[0]!.fingerprint;
    store.disable(rootFp);
    expect(verifyEkChain(leaf, { store, now: NOW, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'disabled-ca', disabledCa: { fingerprint: rootFp, subject: 'O=Vendor, CN=Root' } });
  });

  describe('names propose, signatures decide', () => {
    const rogueRoot = ca('Root');
    const rogueIntermediate = ca('Intermediate', rogueRoot);
    const rogueLeaf = ek(rogueIntermediate);

    it('a certificate from a rogue CA with identical names is refused: signature-invalid', () => {
      const result = verifyEkChain(rogueLeaf, { store: storeOf(root, intermediate), now: NOW, ekGraceDays: 0 });
      expect(result).toMatchObject({ ok: false, reason: 'signature-invalid' });
      expect(!result.ok && result.message).toMatch(/^the signature of "" does not verify with the key of trusted CA "O=Vendor, CN=Intermediate" \([0-9a-f]{64}\)$/);
    });

    it('the rogue intermediate supplied with the request is caught one level up', () => {
      const result = verifyEkChain(rogueLeaf, { store: storeOf(root, intermediate), extraIntermediates: [rogueIntermediate.der], now: NOW, ekGraceDays: 0 });
      expect(result).toMatchObject({ ok: false, reason: 'signature-invalid', at: { subject: 'O=Vendor, CN=Intermediate' } });
      expect(!result.ok && result.message).toMatch(/does not verify with the key of trusted CA "O=Vendor, CN=Root"/);
    });

    it('with a same-name impostor in the store as well, the genuine CA is found whichever comes first', () => {
      for (const order of [
        [root, rogueIntermediate, intermediate],
        [root, intermediate, rogueIntermediate],
      ]) {
        const store = new TrustStore();
        order.forEach((c) => store.add(c.der));
        expect(subjects(verifyEkChain(leaf, { store, now: NOW, ekGraceDays: 0 }))).toHaveLength(3);
        const result = verifyEkChain(leaf, { store, now: NOW, ekGraceDays: 0 });
        expect(result.ok && result.chain[1]!.fingerprint).toBe(storeOf(intermediate).entries()[0]!.fingerprint);
      }
    });

    it('a key-ID-only candidate with another name is proposed and accepted on its signature', () => {
      // The leaf names an issuer nobody has, but its AKI points at the real intermediate's key.
      const renamed = makeEkCertificate({ issuer: intermediate, issuerName: [[['CN', 'Renamed']]], publicKey: ec().publicKey, notBefore: LONG_AGO, notAfter: FAR });
      expect(subjects(verifyEkChain(renamed, { store: storeOf(root, intermediate), now: NOW, ekGraceDays: 0 }))).toHaveLength(3);
    });
  });

  it('tries every candidate: a re-issued intermediate (same key, new validity) wins over the expired one', () => {
    const keys = ec();
    const old = makeCa({ subject: intermediate.subject, keys, issuer: root, notBefore: LONG_AGO, notAfter: new Date(NOW.getTime() - 10 * DAY), serial: 7 });
    const renewed = makeCa({ subject: intermediate.subject, keys, issuer: root, notBefore: LONG_AGO, notAfter: FAR, serial: 8 });
    const leafOfKeys = makeEkCertificate({ issuer: renewed, publicKey: ec().publicKey, notBefore: LONG_AGO, notAfter: FAR });
    const result = verifyEkChain(leafOfKeys, { store: storeOf(root, old.der, renewed.der), now: NOW, ekGraceDays: 0 });
    expect(result.ok && result.chain[1]!.notAfter).toBe(FAR.toISOString());
    const onlyOld = verifyEkChain(leafOfKeys, { store: storeOf(root, old.der), now: NOW, ekGraceDays: 0 });
    expect(onlyOld).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('follows a cross-signed CA to whichever root is trusted', () => {
    const oldRoot = ca('Old Root');
    const newRoot = ca('New Root');
    const keys = ec();
    const subject: NameSpec = [[['CN', 'Cross']]];
    const underOld = makeCa({ subject, keys, issuer: oldRoot, notBefore: LONG_AGO, notAfter: FAR });
    const underNew = makeCa({ subject, keys, issuer: newRoot, notBefore: LONG_AGO, notAfter: FAR });
    const leafCross = makeEkCertificate({ issuer: underNew, publicKey: ec().publicKey, notBefore: LONG_AGO, notAfter: FAR });
    const store = storeOf(oldRoot, underOld.der, underNew.der);
    expect(subjects(verifyEkChain(leafCross, { store, now: NOW, ekGraceDays: 0 }))).toEqual(['', 'CN=Cross', 'O=Vendor, CN=Old Root']);
  });

  it('refuses a loop of CAs that sign each other', () => {
    const a = ec();
    const b = ec();
    const nameA: NameSpec = [[['CN', 'A']]];
    const nameB: NameSpec = [[['CN', 'B']]];
    const aByB = makeCa({ subject: nameA, keys: a, issuer: { der: Buffer.alloc(0), subject: nameB, ...b }, notBefore: LONG_AGO, notAfter: FAR });
    const bByA = makeCa({ subject: nameB, keys: b, issuer: { der: Buffer.alloc(0), subject: nameA, ...a }, notBefore: LONG_AGO, notAfter: FAR });
    const leafA = ek({ der: aByB.der, subject: nameA, ...a });
    const result = verifyEkChain(leafA, { store: storeOf(aByB, bByA), now: NOW, ekGraceDays: 0 });
    expect(result).toMatchObject({ ok: false, reason: 'loop', message: '"CN=A" would appear twice in the chain' });
  });

  it('caps the depth', () => {
    let top = root;
    const store = storeOf(root);
    for (let i = 0; i < 9; i++) {
      top = ca(`Level ${i}`, top);
      store.add(top.der);
    }
    const deep = ek(top);
    expect(verifyEkChain(deep, { store, now: NOW, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'too-deep', message: 'no trusted root within 8 certificates' });
    expect(verifyEkChain(deep, { store, now: NOW, ekGraceDays: 0, maxDepth: 11 }).ok).toBe(true);
  });

  it('gives up after its signature budget when many same-name CAs are offered', () => {
    const impostors = Array.from({ length: 70 }, () => ca('Intermediate', root).der);
    const result = verifyEkChain(ek(ca('Intermediate', root)), { store: storeOf(root), extraIntermediates: impostors, now: NOW, ekGraceDays: 0 });
    expect(result).toMatchObject({ ok: false, reason: 'too-many-candidates' });
  });

  it('enforces pathLenConstraint', () => {
    const strict = ca('Strict', root, { pathLength: 0 });
    const below = ca('Below', strict);
    const result = verifyEkChain(ek(below), { store: storeOf(root, strict, below), now: NOW, ekGraceDays: 0 });
    expect(result).toMatchObject({ ok: false, reason: 'path-length-exceeded', message: 'CA "O=Vendor, CN=Strict" allows 0 intermediate(s) below it, the chain has 1' });
  });

  it('refuses an issuer that is not a CA, or may not sign certificates', () => {
    const keys = ec();
    const subject: NameSpec = [[['CN', 'Not a CA']]];
    const endEntity = issueCertificate({ subject, issuer: root.subject, notBefore: LONG_AGO, notAfter: FAR, publicKey: keys.publicKey, signingKey: root.privateKey, extensions: [basicConstraints(false)] });
    const signedByIt = ek({ der: endEntity, subject, ...keys });
    expect(verifyEkChain(signedByIt, { store: storeOf(root), extraIntermediates: [endEntity], now: NOW, ekGraceDays: 0 })).toMatchObject({
      ok: false,
      reason: 'not-a-ca',
      message: 'issuer "CN=Not a CA" is not a CA (basicConstraints cA is not TRUE)',
    });
    const noCertSign = issueCertificate({ subject, issuer: root.subject, notBefore: LONG_AGO, notAfter: FAR, publicKey: keys.publicKey, signingKey: root.privateKey, extensions: [basicConstraints(true), keyUsage(0)] });
    expect(verifyEkChain(signedByIt, { store: storeOf(root), extraIntermediates: [noCertSign], now: NOW, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'not-a-ca' });
    expect(new TrustStore().add(noCertSign)).toMatchObject({ status: 'rejected', reason: 'not-a-ca' });
    expect(new TrustStore().add(endEntity)).toMatchObject({ status: 'rejected', reason: 'not-a-ca', message: '"CN=Not a CA" is not a CA certificate (basicConstraints cA is not TRUE)' });
  });

  it('refuses a CA certificate offered as the EK certificate', () => {
    expect(verifyEkChain(intermediate.der, { store: storeOf(root), now: NOW, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'leaf-is-ca' });
  });

  it('refuses certificates with unhandled critical extensions, in the leaf and in CAs', () => {
    const odd = { oid: '1.3.6.1.4.1.99999.1', critical: true, value: Buffer.from([0x05, 0x00]) };
    const leafOdd = ek(intermediate, { extraExtensions: [odd] });
    expect(verifyEkChain(leafOdd, { store: storeOf(root, intermediate), now: NOW, ekGraceDays: 0 })).toMatchObject({
      ok: false,
      reason: 'unhandled-critical-extension',
      message: 'EK certificate has unhandled critical extension(s) 1.3.6.1.4.1.99999.1',
    });
    const keys = ec();
    const oddCa = issueCertificate({ subject: [[['CN', 'Odd CA']]], issuer: root.subject, notBefore: LONG_AGO, notAfter: FAR, publicKey: keys.publicKey, signingKey: root.privateKey, extensions: [basicConstraints(true), odd] });
    const result = verifyEkChain(ek({ der: oddCa, subject: [[['CN', 'Odd CA']]], ...keys }), { store: storeOf(root, oddCa), now: NOW, ekGraceDays: 0 });
    expect(result).toMatchObject({ ok: false, reason: 'unhandled-critical-extension' });
    // Non-critical unknown extensions are fine.
    expect(verifyEkChain(ek(intermediate, { extraExtensions: [{ ...odd, critical: false }] }), { store: storeOf(root, intermediate), now: NOW, ekGraceDays: 0 }).ok).toBe(true);
  });

  it('reports unreadable input as malformed instead of throwing', () => {
    expect(verifyEkChain(Buffer.from('nonsense'), { store: new TrustStore(), now: NOW, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'malformed' });
    expect(verifyEkChain(leaf, { store: new TrustStore(), extraIntermediates: [leaf.subarray(0, 100)], now: NOW, ekGraceDays: 0 })).toMatchObject({
      ok: false,
      reason: 'malformed',
      message: expect.stringMatching(/^intermediate #1: truncated or malformed DER/),
    });
  });

  it('refuses invalid grace options loudly', () => {
    expect(() => verifyEkChain(leaf, { store: new TrustStore(), now: NOW, ekGraceDays: -1 })).toThrow(RangeError);
    expect(() => verifyEkChain(leaf, { store: new TrustStore(), now: NOW, ekGraceDays: 0, caGraceDays: Number.NaN })).toThrow(RangeError);
  });
});

describe('expiry and grace', () => {
  const root = ca('Root');
  const expiredAt = new Date(NOW.getTime() - 30 * DAY);
  const expiredIntermediate = ca('Expired Intermediate', root, { notAfter: expiredAt });
  const leafOfExpired = ek(expiredIntermediate);
  const store = storeOf(root, expiredIntermediate);

  it('an expired intermediate is refused without grace', () => {
    expect(verifyEkChain(leafOfExpired, { store, now: NOW, ekGraceDays: 0 })).toMatchObject({
      ok: false,
      reason: 'expired',
      message: `CA "O=Vendor, CN=Expired Intermediate" expired ${expiredAt.toISOString()} (no grace)`,
      at: { subject: 'O=Vendor, CN=Expired Intermediate' },
    });
  });

  it('and accepted within caGraceDays, which the result reports', () => {
    const result = verifyEkChain(leafOfExpired, { store, now: NOW, ekGraceDays: 0, caGraceDays: 30 });
    expect(result).toMatchObject({
      ok: true,
      graceApplied: [{ kind: 'ca', subject: 'O=Vendor, CN=Expired Intermediate', notAfter: expiredAt.toISOString(), daysExpired: 30 }],
    });
    expect(verifyEkChain(leafOfExpired, { store, now: new Date(NOW.getTime() + 1000), ekGraceDays: 0, caGraceDays: 30 })).toMatchObject({ ok: false, reason: 'expired' });
    expect(verifyEkChain(leafOfExpired, { store, now: NOW, ekGraceDays: 0, caGraceDays: Infinity }).ok).toBe(true);
  });

  it('ekGraceDays does not cover CAs, caGraceDays does not cover the EK', () => {
    expect(verifyEkChain(leafOfExpired, { store, now: NOW, ekGraceDays: Infinity })).toMatchObject({ ok: false, reason: 'expired' });
    const intermediate = ca('Intermediate', root);
    const expiredEk = ek(intermediate, { notAfter: expiredAt });
    expect(verifyEkChain(expiredEk, { store: storeOf(root, intermediate), now: NOW, ekGraceDays: 0, caGraceDays: Infinity })).toMatchObject({
      ok: false,
      reason: 'expired',
      message: `EK certificate "" expired ${expiredAt.toISOString()} (no grace)`,
    });
  });

  it('an expired EK certificate is refused without grace and accepted with it (N days, or Infinity)', () => {
    const intermediate = ca('Intermediate', root);
    const expiredEk = ek(intermediate, { notAfter: expiredAt });
    const s = storeOf(root, intermediate);
    expect(verifyEkChain(expiredEk, { store: s, now: NOW, ekGraceDays: 29 })).toMatchObject({ ok: false, reason: 'expired', message: expect.stringContaining('(grace 29 days)') });
    expect(verifyEkChain(expiredEk, { store: s, now: NOW, ekGraceDays: 30 })).toMatchObject({ ok: true, graceApplied: [{ kind: 'ek', daysExpired: 30 }] });
    expect(verifyEkChain(expiredEk, { store: s, now: new Date('9000-01-01T00:00:00Z'), ekGraceDays: Infinity, caGraceDays: Infinity }).ok).toBe(true);
  });

  it('an expired root is refused, and accepted within caGraceDays', () => {
    const oldRoot = ca('Old Root', undefined, { notAfter: expiredAt });
    const intermediate = ca('Intermediate', oldRoot);
    const s = storeOf(oldRoot, intermediate);
    expect(verifyEkChain(ek(intermediate), { store: s, now: NOW, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'expired', at: { subject: 'O=Vendor, CN=Old Root' } });
    expect(verifyEkChain(ek(intermediate), { store: s, now: NOW, ekGraceDays: 0, caGraceDays: 31 }).ok).toBe(true);
  });

  it('not-yet-valid is never graced', () => {
    const future = new Date(NOW.getTime() + DAY);
    const early = ca('Early', root, { notBefore: future });
    expect(verifyEkChain(ek(early), { store: storeOf(root, early), now: NOW, ekGraceDays: Infinity, caGraceDays: Infinity })).toMatchObject({
      ok: false,
      reason: 'not-yet-valid',
      message: `CA "O=Vendor, CN=Early" is not valid before ${future.toISOString()}`,
    });
    const intermediate = ca('Intermediate', root);
    expect(verifyEkChain(ek(intermediate, { notBefore: future }), { store: storeOf(root, intermediate), now: NOW, ekGraceDays: Infinity })).toMatchObject({ ok: false, reason: 'not-yet-valid' });
  });
});

describe('verifyCaChain', () => {
  const root = ca('Root');
  const intermediate = ca('Intermediate', root);

  it('a root in the store chains to itself; an intermediate to its root; a non-CA is refused', () => {
    const store = storeOf(root, intermediate);
    expect(subjects(verifyCaChain(root.der, { store, now: NOW }))).toEqual(['O=Vendor, CN=Root']);
    const result = verifyCaChain(intermediate.der, { store, now: NOW });
    expect(result.ok && result.chain.map((l) => [l.kind, l.source])).toEqual([
      ['intermediate', 'store'],
      ['root', 'store'],
    ]);
    const endEntity = ek(intermediate, { extraExtensions: [] });
    expect(verifyCaChain(endEntity, { store, now: NOW })).toMatchObject({ ok: false, reason: 'not-a-ca' });
  });
});

describe('TrustStore', () => {
  it('tells roots from intermediates, ignores duplicates, keeps bundles in order', () => {
    const root = ca('Root');
    const intermediate = ca('Intermediate', root);
    const bundle = [root.der, intermediate.der].map((d) => `-----BEGIN CERTIFICATE-----\n${d.toString('base64')}\n-----END CERTIFICATE-----\n`).join('');
    const { store, results } = TrustStore.from([bundle, intermediate.der]);
    expect(results.map((r) => r.status)).toEqual(['added', 'added', 'duplicate']);
    expect(store.roots().map((e) => e.certificate.subject.text)).toEqual(['O=Vendor, CN=Root']);
    expect(store.intermediates().map((e) => [e.certificate.subject.text, e.anchor])).toEqual([['O=Vendor, CN=Intermediate', false]]);
    expect(store.size).toBe(2);
  });

  it('a self-issued CA whose own key does not verify it (key rollover) is an intermediate', () => {
    const root = ca('Root');
    const rollover = makeCa({ subject: root.subject, keys: ec(), issuer: root, notBefore: LONG_AGO, notAfter: FAR });
    const store = storeOf(root, rollover);
    expect(store.entries().map((e) => e.kind)).toEqual(['root', 'intermediate']);
  });

  it('rejects what is not a certificate, with the reason', () => {
    expect(new TrustStore().addAll('hello')).toEqual([{ status: 'rejected', reason: 'not-a-certificate', message: 'not DER, PEM or base64 DER' }]);
  });

  it('EKU is reported, not required', () => {
    const root = ca('Root');
    const leaf = issueCertificate({ subject: [], issuer: root.subject, notBefore: LONG_AGO, notAfter: FAR, publicKey: ec().publicKey, signingKey: root.privateKey, extensions: [ekCertificateEku()] });
    expect(verifyEkChain(leaf, { store: storeOf(root), now: NOW, ekGraceDays: 0 }).ok).toBe(true);
  });
});
