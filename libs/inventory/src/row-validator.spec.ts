import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { TrustStore } from '@rackseal/ek-trust';
import { makeCa, makeEkCertificate, type TestCa } from '../../ek-trust/src/testing/certificate-builder';
import { parseHeader } from './columns';
import { type RowResult, validateRow } from './row-validator';

const NOW = new Date('2025-06-01T00:00:00Z');
const PAST = new Date('2015-01-01T00:00:00Z');
const FAR = new Date('2045-01-01T00:00:00Z');
const ec = (): { privateKey: KeyObject; publicKey: KeyObject } => generateKeyPairSync('ec', { namedCurve: 'P-256' });
const ca = (cn: string, issuer?: TestCa): TestCa => makeCa({ subject: [[['CN', cn]]], keys: ec(), issuer, notBefore: PAST, notAfter: FAR });
const pem = (der: Buffer): string => `-----BEGIN CERTIFICATE-----\n${der.toString('base64')}\n-----END CERTIFICATE-----\n`;

describe('validateRow', () => {
  const root = ca('Root');
  const intermediate = ca('Intermediate', root);
  const other = ca('Other Intermediate', root);
  const leaf = makeEkCertificate({ issuer: intermediate, publicKey: ec().publicKey, notBefore: PAST, notAfter: FAR });
  const expired = makeEkCertificate({ issuer: intermediate, publicKey: ec().publicKey, notBefore: PAST, notAfter: new Date('2025-01-01T00:00:00Z') });
  const store = new TrustStore();
  store.add(root.der);
  const columns = parseHeader(['serial', 'hostname', 'ek_cert', 'ek_intermediates']);
  const check = (fields: string[], ekGraceDays = 0): RowResult => validateRow({ line: 7, fields }, { columns, store, now: NOW, ekGraceDays, caGraceDays: 0 });
  const reasonOf = (r: RowResult): string => (r.ok ? 'ok' : `${r.reason}: ${r.message}`);

  it('takes intermediates from the row: a PEM bundle, or base64 DERs separated by ; or whitespace', () => {
    expect(check(['SN1', 'h', leaf.toString('base64'), pem(other.der) + pem(intermediate.der)]).ok).toBe(true);
    expect(check(['SN1', 'h', leaf.toString('base64'), `${other.der.toString('base64')}; ${intermediate.der.toString('base64')}`]).ok).toBe(true);
    expect(check(['SN1', 'h', leaf.toString('base64'), `${other.der.toString('base64')}\n${intermediate.der.toString('base64')}`]).ok).toBe(true);
  });

  it('refuses a chain without its intermediate, unreadable intermediates, and an expired EK outside the grace', () => {
    expect(reasonOf(check(['SN1', 'h', leaf.toString('base64'), '']))).toMatch(/^untrusted-chain: untrusted-root: /);
    expect(reasonOf(check(['SN1', 'h', leaf.toString('base64'), 'zzz']))).toBe('bad-intermediates: ek_intermediates: not DER, PEM or base64 DER');
    expect(reasonOf(check(['SN1', 'h', expired.toString('base64'), intermediate.der.toString('base64')]))).toMatch(/^untrusted-chain: expired: /);
    expect(check(['SN1', 'h', expired.toString('base64'), intermediate.der.toString('base64')], 365).ok).toBe(true);
  });

  it('keeps the row as data: trims cells, lowercases the host name, reports the serial as given', () => {
    const result = check([' SN-9 ', ' Node9.Example ', leaf.toString('base64'), intermediate.der.toString('base64')]);
    expect(result.ok && { serial: result.row.serial, hostname: result.row.hostname, der: result.row.ekCert?.equals(leaf) }).toEqual({ serial: 'SN-9', hostname: 'node9.example', der: true });
    for (const serial of ['=1+1', '+SN', '-SN', '@SUM(A1)', 'SN 1', 'SN;1', "SN'1", 'x'.repeat(129)]) {
      expect(check([serial, 'h', leaf.toString('base64'), '']).ok && serial).toBe(false);
    }
    expect(check(['@SUM(A1)', 'h', '', ''])).toMatchObject({ ok: false, line: 7, reason: 'invalid-serial', serial: '@SUM(A1)' });
  });

  it('refuses a control character in any cell as control-character naming the column; PEM line ends stay allowed', () => {
    const cert = leaf.toString('base64');
    expect(check(['SN\u0000X', 'h', cert, ''])).toEqual({
      ok: false,
      line: 7,
      reason: 'control-character',
      message: 'serial contains a control character (U+0000 at character 3)',
      serial: 'SN\\u0000X',
    });
    expect(reasonOf(check(['SN1', 'h\u001b[2J', cert, '']))).toBe('control-character: hostname contains a control character (U+001B at character 2)');
    expect(reasonOf(check(['SN1', 'h\nx', cert, '']))).toBe('control-character: hostname contains a control character (U+000A at character 2)');
    expect(reasonOf(check(['SN1', 'h', `${cert}\u0000`, '']))).toBe(`control-character: ek_cert contains a control character (U+0000 at character ${cert.length + 1})`);
    expect(reasonOf(check(['SN1', 'h', cert, `${intermediate.der.toString('base64')}\u0085`]))).toMatch(/^control-character: ek_intermediates contains a control character \(U\+0085 /);
    expect(reasonOf(check(['SN1\u202e', 'h', cert, '']))).toBe('control-character: serial contains a control character (U+202E at character 4)');
    expect(check(['SN1', 'h', pem(leaf).replace(/\n/g, '\r\n'), `\t${pem(intermediate.der)}`]).ok).toBe(true);
  });

  it('cuts a long message (a certificate name is the uploader text) at 500 characters', () => {
    const longName = ca(`Vendor ${'N'.repeat(5000)}`);
    const cert = makeEkCertificate({ issuer: longName, publicKey: ec().publicKey, notBefore: PAST, notAfter: FAR });
    const result = check(['SN1', 'h', cert.toString('base64'), '']);
    expect(result).toMatchObject({ ok: false, reason: 'untrusted-chain', message: expect.stringMatching(/^untrusted-root: issuer "CN=Vendor N+…$/) });
    expect(!result.ok && result.message.length).toBe(501);
  });
});
