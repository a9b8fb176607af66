/**
 * The attestation start's trust store cache (libs/vendor-cas TrustStoreCache): reused while
 * `vendor_cas` is unchanged, rebuilt by the next call after any change made elsewhere (another
 * VendorCas, as another replica or the CLI would): a disabled CA refuses the chain at once, an
 * enabled one passes again, a pinned intermediate is an anchor, a new CA is trusted.
 */
import { AuditLog } from '@rackseal/audit';
import { verifyEkChain, readCertificate } from '@rackseal/ek-trust';
import { CryptoRandomSource, SystemClock } from '@rackseal/platform';
import { loadConfig } from '@rackseal/config';
import { dataSourceOptions } from '@rackseal/persistence';
import { loadTrustStore, TrustStoreCache, VendorCaEntity, VendorCas } from '@rackseal/vendor-cas';
import { generateKeyPairSync } from 'node:crypto';
import { DataSource } from 'typeorm';
import { makeCa, makeEkCertificate, type TestCa } from '../libs/ek-trust/src/testing/certificate-builder';
import { createTestDatabase, type TestDatabase } from './support/database';

const PAST = new Date('2015-01-01T00:00:00Z');
const FUTURE = new Date('2045-01-01T00:00:00Z');
const p256 = () => generateKeyPairSync('ec', { namedCurve: 'P-256' });

describe('TrustStoreCache', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let cas: VendorCas;
  let root: TestCa;
  let issuing: TestCa;
  let ek: Buffer;

  beforeAll(async () => {
    db = await createTestDatabase();
    // VendorCas's enable/disable/pin read the row through its entity, as the control plane registers it.
    const config = loadConfig({ RACKSEAL_ENV: 'test', DATABASE_URL: db.url });
    ds = await new DataSource({ ...dataSourceOptions(config, 'rackseal-test'), entities: [VendorCaEntity] }).initialize();
    const clock = new SystemClock();
    cas = new VendorCas(ds, new AuditLog(ds, clock), clock, new CryptoRandomSource());
    root = makeCa({ subject: [[['CN', 'Cache Root']]], keys: p256(), notBefore: PAST, notAfter: FUTURE });
    issuing = makeCa({ subject: [[['CN', 'Cache Issuing']]], keys: p256(), issuer: root, notBefore: PAST, notAfter: FUTURE, pathLength: 0 });
    ek = makeEkCertificate({ issuer: issuing, publicKey: p256().publicKey, notBefore: PAST, notAfter: FUTURE });
    await cas.addBundle([{ content: root.der, source: 'root' }, { content: issuing.der, source: 'issuing' }], { addedBy: 'test' });
  }, 60_000);

  afterAll(async () => {
    await ds?.destroy();
    await db?.drop();
  });

  const chain = (store: Awaited<ReturnType<typeof loadTrustStore>>) => {
    const result = verifyEkChain(readCertificate(ek), { store, now: new Date(), ekGraceDays: 0 });
    return result.ok ? 'ok' : result.reason;
  };

  it('reuses the store while vendor_cas is unchanged, and it holds what loadTrustStore holds', async () => {
    const cache = new TrustStoreCache();
    const first = await ds.transaction((m) => cache.load(m));
    expect(await ds.transaction((m) => cache.load(m))).toBe(first);
    const fresh = await loadTrustStore(ds);
    expect(first.entries().map((e) => [e.fingerprint, e.anchor, e.enabled])).toEqual(fresh.entries().map((e) => [e.fingerprint, e.anchor, e.enabled]));
    expect(chain(first)).toBe('ok');
  });

  it('sees a CA disabled, enabled and pinned elsewhere at the next call', async () => {
    const cache = new TrustStoreCache();
    const before = await cache.load(ds);
    expect(chain(before)).toBe('ok');
    const issuingRef = { fingerprint: before.entries().find((e) => e.label === 'issuing')!.fingerprint };

    await cas.disable(issuingRef, 'test');
    const disabled = await cache.load(ds);
    expect(disabled).not.toBe(before);
    expect(chain(disabled)).toBe('disabled-ca');

    await cas.enable(issuingRef, 'test');
    const enabled = await cache.load(ds);
    expect(chain(enabled)).toBe('ok');
    expect(enabled.get(issuingRef.fingerprint)?.anchor).toBe(false);

    await cas.setAnchor(issuingRef, true, 'test');
    expect((await cache.load(ds)).get(issuingRef.fingerprint)?.anchor).toBe(true);
    await cas.setAnchor(issuingRef, false, 'test');
    expect((await cache.load(ds)).get(issuingRef.fingerprint)?.anchor).toBe(false);
  });

  it('trusts a CA added elsewhere at the next call', async () => {
    const cache = new TrustStoreCache();
    const otherRoot = makeCa({ subject: [[['CN', 'Other Root']]], keys: p256(), notBefore: PAST, notAfter: FUTURE });
    const otherEk = makeEkCertificate({ issuer: otherRoot, publicKey: p256().publicKey, notBefore: PAST, notAfter: FUTURE });
    const refused = verifyEkChain(readCertificate(otherEk), { store: await cache.load(ds), now: new Date(), ekGraceDays: 0 });
    expect(refused.ok).toBe(false);
    await cas.addBundle([{ content: otherRoot.der, source: 'other' }], { addedBy: 'test' });
    expect(verifyEkChain(readCertificate(otherEk), { store: await cache.load(ds), now: new Date(), ekGraceDays: 0 }).ok).toBe(true);
  });
});
