import { marshal, TpmWriter } from './tpm-writer';

const hex = (b: Buffer) => b.toString('hex');

describe('TpmWriter (one growing buffer)', () => {
  it('writes every field kind byte for byte, big- and little-endian', () => {
    const bytes = new TpmWriter()
      .u8(0xab)
      .u16(0x0102)
      .u32(0x03040506)
      .u64(0x0708090a0b0c0d0en)
      .u16le(0x0102)
      .u32le(0x03040506)
      .bytes(Buffer.from('ff', 'hex'))
      .tpm2b(Buffer.from('c0ffee', 'hex'))
      .toBuffer();
    expect(hex(bytes)).toBe('ab' + '0102' + '03040506' + '0708090a0b0c0d0e' + '0201' + '06050403' + 'ff' + '0003c0ffee');
  });

  it('grows past its capacity in the middle of fields and keeps what came before', () => {
    const long = Buffer.alloc(100, 0x5a);
    // Capacity 3: the u32 crosses the end, then the 100 bytes need more than a doubling.
    const bytes = new TpmWriter(3).u16(0x8001).u32(0xdeadbeef).bytes(long).u8(0x01).toBuffer();
    expect(hex(bytes)).toBe('8001' + 'deadbeef' + '5a'.repeat(100) + '01');
  });

  it('returns exactly the bytes written, whatever the capacity', () => {
    expect(hex(new TpmWriter(4).u32(1).toBuffer())).toBe('00000001');
    expect(hex(new TpmWriter(64).u32(1).toBuffer())).toBe('00000001');
    expect(new TpmWriter().toBuffer()).toHaveLength(0);
  });

  it('never changes bytes already handed out by toBuffer', () => {
    const inPlace = new TpmWriter(16).u16(0x1111);
    const first = inPlace.toBuffer();
    inPlace.u16(0x2222);
    const exact = new TpmWriter(2).u16(0x3333);
    const full = exact.toBuffer();
    exact.u32(0x44444444);
    expect([hex(first), hex(inPlace.toBuffer()), hex(full), hex(exact.toBuffer())]).toEqual(['1111', '11112222', '3333', '333344444444']);
  });

  it('sized() writes the size of what its callback wrote in front of it, nested too', () => {
    const bytes = marshal((w) => w.u8(0xee).sized((outer) => outer.u16(0x0102).sized((inner) => inner.bytes(Buffer.from('abcdef', 'hex')))));
    expect(hex(bytes)).toBe('ee' + '0007' + '0102' + '0003abcdef');
    expect(hex(marshal((w) => w.sized(() => undefined)))).toBe('0000');
  });

  it('a sized structure over 65535 bytes is refused and leaves nothing of itself behind', () => {
    const w = new TpmWriter().u8(0x01);
    expect(() => w.sized((inner) => inner.bytes(Buffer.alloc(0x10000)))).toThrow(new RangeError('u16: 65536 does not fit in 16 bits'));
    expect(hex(w.u8(0x02).toBuffer())).toBe('0102');
  });

  it('a sized callback that throws leaves nothing of itself behind', () => {
    const w = new TpmWriter().u8(0x01);
    expect(() =>
      w.sized((inner) => {
        inner.u32(0xffffffff);
        throw new Error('half-written structure');
      }),
    ).toThrow('half-written structure');
    expect(hex(w.u8(0x02).toBuffer())).toBe('0102');
  });

  it.each([
    ['u8', (w: TpmWriter) => w.u8(256), 'u8: 256 does not fit in 8 bits'],
    ['u16', (w: TpmWriter) => w.u16(-1), 'u16: -1 does not fit in 16 bits'],
    ['u32', (w: TpmWriter) => w.u32(2 ** 32), 'u32: 4294967296 does not fit in 32 bits'],
    ['u32le', (w: TpmWriter) => w.u32le(1.5), 'u32: 1.5 does not fit in 32 bits'],
    ['tpm2b', (w: TpmWriter) => w.tpm2b(Buffer.alloc(0x10000)), 'u16: 65536 does not fit in 16 bits'],
  ])('refuses a value that does not fit its field (%s) and writes nothing', (_label, write, message) => {
    const w = new TpmWriter().u8(0x07);
    expect(() => write(w)).toThrow(new RangeError(message));
    expect(hex(w.toBuffer())).toBe('07');
  });

  it('refuses a u64 beyond 64 bits and writes nothing', () => {
    const w = new TpmWriter().u8(0x07);
    // Node's own range error (ERR_OUT_OF_RANGE), from outside jest's realm, hence matched by message.
    expect(() => w.u64(2n ** 64n)).toThrow(/"value" is out of range/);
    expect(hex(w.toBuffer())).toBe('07');
  });
});
