import { compareSetOfEncodings, DerCursor, DerError, decodeInteger, decodeOid, decodeTime, encodeTlv, readTlv, TAG } from './der';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

describe('DER reader', () => {
  it('reads short and long lengths, flags non-minimal long forms, keeps raw bytes', () => {
    const short = readTlv(hex('0403 aabbcc'), 0, 'x');
    expect([short.tag, short.content.toString('hex'), short.raw.toString('hex'), short.nonMinimalLength]).toEqual([4, 'aabbcc', '0403aabbcc', false]);
    const long = readTlv(Buffer.concat([hex('0481c8'), Buffer.alloc(200)]), 0, 'x');
    expect([long.content.length, long.nonMinimalLength]).toEqual([200, false]);
    expect(readTlv(hex('048103 aabbcc'), 0, 'x').nonMinimalLength).toBe(true);
    expect(readTlv(hex('04820003 aabbcc'), 0, 'x').nonMinimalLength).toBe(true);
  });

  it.each([
    ['indefinite length', '3080 0000', 'x at offset 0: indefinite length (BER) is not allowed in a certificate'],
    ['high tag number', '1f8101 00', 'x at offset 0: high tag number form (0x1f) is not used by X.509'],
    ['length past the end', '0405 aabb', 'x at offset 0: length 5 runs past the end of the enclosing data (2 bytes left)'],
    ['truncated length octets', '0482 01', 'x at offset 0: truncated length octets'],
    ['five length octets', '0485 0000000001 00', 'x at offset 0: length of 5 octets is out of range'],
    ['nothing', '', 'x at offset 0: missing (end of data)'],
  ])('refuses %s', (_label, input, message) => {
    expect(() => readTlv(hex(input), 0, 'x')).toThrow(new DerError('x', 0, message.replace(/^x at offset 0: /, '')));
  });

  it('a cursor checks tags and refuses trailing children', () => {
    const outer = readTlv(hex('3006 020101 020102'), 0, 'seq');
    const cursor = DerCursor.over(hex('3006 020101 020102'), outer, 'Seq');
    expect(cursor.next('a', TAG.INTEGER).content[0]).toBe(1);
    expect(() => cursor.end()).toThrow('Seq at offset 5: 3 unexpected trailing bytes');
    expect(() => cursor.next('b', TAG.OID)).toThrow('Seq.b at offset 5: expected tag 0x06, found 0x02');
  });

  it('decodes OIDs, refusing padded arcs', () => {
    expect(decodeOid(readTlv(hex('0603 551d13'), 0, 'o'), 'o')).toBe('2.5.29.19');
    expect(decodeOid(readTlv(hex('0605 6781050801'), 0, 'o'), 'o')).toBe('2.23.133.8.1');
    expect(decodeOid(readTlv(hex('0609 2a864886f70d01010b'), 0, 'o'), 'o')).toBe('1.2.840.113549.1.1.11');
    expect(() => decodeOid(readTlv(hex('0603 55801d'), 0, 'o'), 'o')).toThrow(/leading 0x80/);
    expect(() => decodeOid(readTlv(hex('0602 5581'), 0, 'o'), 'o')).toThrow(/ends inside an arc/);
  });

  it.each([
    ['020101', false, false],
    ['020100', false, false],
    ['02020080', false, false],
    ['0202 0001', false, true],
    ['0201 ff', true, false],
    ['0202 ff80', true, true],
    ['0202 ff7f', true, false],
  ])('INTEGER %s: negative %s, non-minimal %s', (input, negative, nonMinimal) => {
    expect(decodeInteger(readTlv(hex(input), 0, 'i'), 'i')).toMatchObject({ negative, nonMinimal });
  });

  it('reads UTCTime (50 → 1950, 49 → 2049, optional seconds) and GeneralizedTime (9999)', () => {
    const time = (tag: number, text: string): Date => decodeTime(readTlv(encodeTlv(tag, Buffer.from(text)), 0, 't'), 't');
    expect(time(TAG.UTC_TIME, '500101000000Z').toISOString()).toBe('1950-01-01T00:00:00.000Z');
    expect(time(TAG.UTC_TIME, '491231235959Z').toISOString()).toBe('2049-12-31T23:59:59.000Z');
    expect(time(TAG.UTC_TIME, '1501020304Z').toISOString()).toBe('2015-01-02T03:04:00.000Z');
    expect(time(TAG.GENERALIZED_TIME, '99991231235959Z').toISOString()).toBe('9999-12-31T23:59:59.000Z');
    expect(() => time(TAG.UTC_TIME, '150230000000Z')).toThrow(/invalid date/);
    expect(() => time(TAG.UTC_TIME, '150101000000+0100')).toThrow(/malformed time/);
  });

  it('orders SET OF encodings as X.690 §11.6 says', () => {
    expect(compareSetOfEncodings(hex('300b'), hex('3015'))).toBeLessThan(0);
    expect(compareSetOfEncodings(hex('3015'), hex('300b'))).toBeGreaterThan(0);
    expect(compareSetOfEncodings(hex('3000'), hex('300000'))).toBe(0);
  });
});
