import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { verifyCaChain, verifyEkChain, type ChainResult } from './chain';
import { TrustStore } from './trust-store';
import { makeCa, makeEkCertificate, type NameSpec, type TestCa } from './testing/certificate-builder';

// Issue 9 item 1: a CA the operator disabled must never be part of an accepted chain — whether the
// store proposes it, the request supplies the same certificate, or a cross-signed copy of its key
// (other DER, same SubjectPublicKeyInfo) arrives through the request or sits enabled in the store.

const NOW = new Date('2025-06-01T00:00:00Z');
const FROM = new Date('2015-01-01T00:00:00Z');
const TO = new Date('2045-01-01T00:00:00Z');

const ec = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const name = (cn: string): NameSpec => [[['O', 'Vendor']], [['CN', cn]]];

function ca(subject: NameSpec, keys: ReturnType<typeof ec>, issuer?: TestCa, serial = 1): TestCa {
  return makeCa({ subject, keys, issuer, notBefore: FROM, notAfter: TO, serial });
}

function fingerprintOf(der: Buffer): string {
  const store = new TrustStore();
  const added = store.add(der);
  if (added.status === 'rejected') {
    throw new Error(added.message);
  }
  return added.entry.fingerprint;
}

function store(...entries: (readonly [TestCa, boolean])[]): TrustStore {
  const s = new TrustStore();
  for (const [c, enabled] of entries) {
    expect(s.add(c.der, { enabled }).status).toBe('added');
  }
  return s;
}

function refusal(result: ChainResult): { reason: string; message: string; disabledCa?: { fingerprint: string; subject: string } } {
  if (result.ok) {
    throw new Error(`expected a refusal, got the chain ${result.chain.map((l) => l.subject).join(' → ')}`);
  }
  return result;
}

describe('disabled CAs in chains', () => {
  const rootKeys = ec();
  const intermediateKeys = ec();
  const root = ca(name('Root'), rootKeys);
  const otherRoot = ca(name('Other Root'), ec());
  const intermediate = ca(name('Intermediate'), intermediateKeys, root, 7);
  // Same subject and key as `intermediate`, issued by the other (trusted) root: different DER.
  const crossSigned = ca(name('Intermediate'), intermediateKeys, otherRoot, 8);
  const leaf = makeEkCertificate({ issuer: intermediate, publicKey: ec().publicKey, notBefore: FROM, notAfter: TO });
  const fp = { root: fingerprintOf(root.der), intermediate: fingerprintOf(intermediate.der), crossSigned: fingerprintOf(crossSigned.der) };

  it('the fixtures chain when nothing is disabled, through either copy of the intermediate', () => {
    expect(verifyEkChain(leaf, { store: store([root, true], [otherRoot, true], [intermediate, true]), now: NOW, ekGraceDays: 0 }).ok).toBe(true);
    const viaCross = verifyEkChain(leaf, { store: store([otherRoot, true]), extraIntermediates: [crossSigned.der], now: NOW, ekGraceDays: 0 });
    expect(viaCross.ok && viaCross.chain.map((l) => l.fingerprint)).toEqual([expect.any(String), fp.crossSigned, fingerprintOf(otherRoot.der)]);
  });

  describe('a disabled intermediate', () => {
    const s = store([root, true], [otherRoot, true], [intermediate, false]);
    const expected = {
      ok: false,
      reason: 'disabled-ca',
      disabledCa: { fingerprint: fp.intermediate, subject: 'O=Vendor, CN=Intermediate' },
    };

    it('is refused from the store, naming its fingerprint', () => {
      const result = refusal(verifyEkChain(leaf, { store: s, now: NOW, ekGraceDays: 0 }));
      expect(result).toMatchObject(expected);
      expect(result.message).toBe(`CA "O=Vendor, CN=Intermediate" is disabled (${fp.intermediate})`);
    });

    it('is refused when the request supplies the same certificate (a CSV row, an agent)', () => {
      expect(verifyEkChain(leaf, { store: s, extraIntermediates: [intermediate.der], now: NOW, ekGraceDays: 0 })).toMatchObject(expected);
    });

    it('is refused when the request supplies a cross-signed copy of its key, chaining to another trusted root', () => {
      // Both the stored (disabled) certificate and the copy are proposed and refused; the first one
      // met is reported, and either way the disabled CA is named.
      const result = refusal(verifyEkChain(leaf, { store: s, extraIntermediates: [crossSigned.der], now: NOW, ekGraceDays: 0 }));
      expect(result).toMatchObject(expected);
      expect(result.message).toContain(`disabled (${fp.intermediate})`);
      // Without the stored certificate to propose, the copy alone is refused by its key.
      const copyOnly = refusal(verifyCaChain(crossSigned.der, { store: s, now: NOW }));
      expect(copyOnly).toMatchObject(expected);
      expect(copyOnly.message).toBe(`CA "O=Vendor, CN=Intermediate" (${fp.crossSigned}) has the key of disabled CA "O=Vendor, CN=Intermediate" (${fp.intermediate})`);
    });

    it('is refused when an enabled store entry carries the same key: disabling distrusts the key', () => {
      const withCopy = store([root, true], [otherRoot, true], [intermediate, false], [crossSigned, true]);
      expect(verifyEkChain(leaf, { store: withCopy, now: NOW, ekGraceDays: 0 })).toMatchObject(expected);
      // The same, whichever of the two was stored first.
      const copyFirst = store([otherRoot, true], [crossSigned, true], [root, true], [intermediate, false]);
      expect(verifyEkChain(leaf, { store: copyFirst, now: NOW, ekGraceDays: 0 })).toMatchObject(expected);
    });

    it('chains again once enabled', () => {
      const again = store([root, true], [otherRoot, true], [intermediate, false]);
      again.enable(fp.intermediate);
      expect(verifyEkChain(leaf, { store: again, extraIntermediates: [crossSigned.der], now: NOW, ekGraceDays: 0 }).ok).toBe(true);
    });

    it('is reported over any other failure of the search (the operator decided it)', () => {
      // A same-name impostor offered alongside fails its signature further along nothing; the
      // disabled CA, whose key did verify the EK, is what the operator must hear about.
      const impostor = ca(name('Intermediate'), ec(), otherRoot, 9);
      expect(verifyEkChain(leaf, { store: s, extraIntermediates: [impostor.der, crossSigned.der], now: NOW, ekGraceDays: 0 })).toMatchObject(expected);
    });
  });

  describe('a disabled root', () => {
    const s = store([root, false], [otherRoot, true], [intermediate, true]);
    const expected = { ok: false, reason: 'disabled-ca', disabledCa: { fingerprint: fp.root, subject: 'O=Vendor, CN=Root' } };
    // The root's key, certified by the other (trusted) root.
    const rootCrossSigned = ca(name('Root'), rootKeys, otherRoot, 3);

    it('is refused from the store and when the request supplies it', () => {
      expect(verifyEkChain(leaf, { store: s, now: NOW, ekGraceDays: 0 })).toMatchObject(expected);
      expect(verifyEkChain(leaf, { store: s, extraIntermediates: [root.der], now: NOW, ekGraceDays: 0 })).toMatchObject(expected);
    });

    it('is refused as a cross-signed copy of its key that would lead to another trusted root', () => {
      expect(verifyEkChain(leaf, { store: s, extraIntermediates: [rootCrossSigned.der], now: NOW, ekGraceDays: 0 })).toMatchObject(expected);
      const copyOnly = refusal(verifyCaChain(rootCrossSigned.der, { store: s, now: NOW }));
      expect(copyOnly).toMatchObject(expected);
      expect(copyOnly.message).toMatch(new RegExp(`has the key of disabled CA "O=Vendor, CN=Root" \\(${fp.root}\\)$`));
    });

    it('is routed around when a path without it exists: a disabled CA only has to be absent from the chain', () => {
      const result = verifyEkChain(leaf, { store: s, extraIntermediates: [crossSigned.der], now: NOW, ekGraceDays: 0 });
      expect(result.ok && result.chain.map((l) => l.fingerprint)).toEqual([expect.any(String), fp.crossSigned, fingerprintOf(otherRoot.der)]);
    });
  });

  describe('verifyCaChain', () => {
    it('refuses a CA that is disabled, or carries the key of a disabled CA, even an enabled anchor', () => {
      const s = store([root, true], [otherRoot, true], [intermediate, false]);
      expect(verifyCaChain(intermediate.der, { store: s, now: NOW })).toMatchObject({ ok: false, reason: 'disabled-ca', disabledCa: { fingerprint: fp.intermediate } });
      expect(verifyCaChain(crossSigned.der, { store: s, now: NOW })).toMatchObject({ ok: false, reason: 'disabled-ca', disabledCa: { fingerprint: fp.intermediate } });
      const pinned = new TrustStore();
      pinned.add(intermediate.der, { enabled: false });
      pinned.add(crossSigned.der, { anchor: true });
      expect(verifyCaChain(crossSigned.der, { store: pinned, now: NOW })).toMatchObject({ ok: false, reason: 'disabled-ca' });
      expect(verifyEkChain(leaf, { store: pinned, now: NOW, ekGraceDays: 0 })).toMatchObject({ ok: false, reason: 'disabled-ca' });
    });
  });

  describe('TrustStore.disabledMatch', () => {
    it('finds the disabled entry by certificate or by key, and nothing once it is enabled', () => {
      const s = store([root, true], [intermediate, false]);
      const parsed = (der: Buffer) => TrustStore.from([der]).store.entries()[0]!.certificate;
      expect(s.disabledMatch(parsed(intermediate.der))?.fingerprint).toBe(fp.intermediate);
      expect(s.disabledMatch(parsed(crossSigned.der))?.fingerprint).toBe(fp.intermediate);
      expect(s.disabledMatch(parsed(root.der))).toBeUndefined();
      s.enable(fp.intermediate);
      expect(s.disabledMatch(parsed(crossSigned.der))).toBeUndefined();
      expect(s.entries().map((e) => e.keyFingerprint)).toEqual([expect.stringMatching(/^[0-9a-f]{64}$/), s.get(fp.intermediate)!.keyFingerprint]);
    });
  });
});
