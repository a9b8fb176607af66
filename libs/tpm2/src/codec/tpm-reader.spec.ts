import { TpmParseError } from './tpm-parse-error';
import { readSized, TpmReader } from './tpm-reader';

function parseError(read: () => unknown): TpmParseError {
  try {
    read();
  } catch (error) {
    expect(error).toBeInstanceOf(TpmParseError);
    return error as TpmParseError;
  }
  throw new Error('expected a TpmParseError');
}

describe('TpmReader', () => {
  it('returns copies: fields short and long stay as read when the input changes afterwards', () => {
    const input = Buffer.concat([Buffer.from('0003', 'hex'), Buffer.from('a1a2a3', 'hex'), Buffer.from('0050', 'hex'), Buffer.alloc(0x50, 0xb0)]);
    const r = new TpmReader(input, 'TEST');
    const short = r.tpm2b('short');
    const long = r.tpm2b('long');
    const raw = r.rawSince(0);
    r.end();
    input.fill(0);
    expect(short.toString('hex')).toBe('a1a2a3');
    expect(long.toString('hex')).toBe('b0'.repeat(0x50));
    expect(raw.toString('hex')).toBe('0003a1a2a30050' + 'b0'.repeat(0x50));
  });

  it('names a TPM2B whose size field is cut short, at the size field', () => {
    const error = parseError(() => new TpmReader(Buffer.from('ff', 'hex'), 'TEST').tpm2b('nonce'));
    expect([error.structure, error.field, error.offset, error.reason]).toEqual(['TEST', 'nonce.size', 0, 'needs 2 byte(s), 1 left']);
  });

  it('names a TPM2B larger than its maximum at its size field, and one longer than the input at its content', () => {
    const tooBig = parseError(() => {
      const r = new TpmReader(Buffer.from('aa0041', 'hex'), 'TEST');
      r.u8('pad');
      r.tpm2b('digest', 64);
    });
    expect([tooBig.field, tooBig.offset, tooBig.reason]).toEqual(['digest.size', 1, '65 exceeds the maximum of 64']);
    const cut = parseError(() => new TpmReader(Buffer.from('0004abcd', 'hex'), 'TEST').tpm2b('digest'));
    expect([cut.field, cut.offset, cut.reason]).toEqual(['digest', 2, 'needs 4 byte(s), 2 left']);
  });

  it('sub() is a bounded reader of its own, named as asked, and moves the outer reader past it', () => {
    const r = new TpmReader(Buffer.from('00000002' + 'abcd' + 'ef', 'hex'), 'OUTER');
    const inner = r.sub(r.u32('size'), 'area', 'INNER');
    expect(inner.u16('both')).toBe(0xabcd);
    const error = parseError(() => inner.u8('beyond'));
    expect([error.structure, error.field, error.offset]).toEqual(['INNER', 'beyond', 2]);
    expect(r.u8('last')).toBe(0xef);
    r.end();
    const tooLong = parseError(() => new TpmReader(Buffer.from('ab', 'hex'), 'OUTER').sub(2, 'area', 'INNER'));
    expect([tooLong.structure, tooLong.field, tooLong.reason]).toEqual(['OUTER', 'area', 'needs 2 byte(s), 1 left']);
  });

  it('view() returns the next bytes as a view of the input (not a copy), bounds-checked like every read', () => {
    const input = Buffer.from('0102030405', 'hex');
    const r = new TpmReader(input, 'OUTER');
    const v = r.view(3, 'field');
    expect(v.toString('hex')).toBe('010203');
    input[0] = 0xff;
    expect(v[0]).toBe(0xff);
    expect(r.offset).toBe(3);
    const error = parseError(() => r.view(3, 'tail'));
    expect([error.field, error.offset, error.reason]).toEqual(['tail', 3, 'needs 3 byte(s), 2 left']);
  });

  it('within() names the nested structure in errors and restores the outer name, also after an error', () => {
    const r = new TpmReader(Buffer.from('0102', 'hex'), 'OUTER');
    expect(() => r.within('INNER', () => r.u32('wide'))).toThrow('INNER.wide at offset 0: needs 4 byte(s), 2 left');
    expect(r.structure).toBe('OUTER');
    expect(r.within('INNER', () => r.structure)).toBe('INNER');
    expect(r.structure).toBe('OUTER');
  });

  it('readSized() parses exactly the sized content and refuses bytes the content parser left', () => {
    const exact = new TpmReader(Buffer.from('0002beef' + '01', 'hex'), 'OUTER');
    expect(readSized(exact, 'publicArea', (inner) => inner.u16('type'))).toBe(0xbeef);
    expect(exact.u8('next')).toBe(1);
    const trailing = parseError(() => readSized(new TpmReader(Buffer.from('0003beef00', 'hex'), 'OUTER'), 'publicArea', (inner) => inner.u16('type')));
    expect([trailing.structure, trailing.field, trailing.offset, trailing.reason]).toEqual(['OUTER', '(end)', 2, '1 trailing byte(s)']);
  });
});
