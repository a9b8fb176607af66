import { MAX_JSON_DEPTH, refuseDeepJson } from './json-depth';

const check = (text: string, encoding: string | null = 'utf-8') => () => refuseDeepJson(undefined, undefined, Buffer.from(text, 'utf8'), encoding);

describe('refuseDeepJson', () => {
  const nested = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;

  it(`accepts ${MAX_JSON_DEPTH} levels and refuses ${MAX_JSON_DEPTH + 1} with a 400 body-parser error`, () => {
    expect(check(nested(MAX_JSON_DEPTH))).not.toThrow();
    expect(check(nested(MAX_JSON_DEPTH + 1))).toThrow(expect.objectContaining({ status: 400, type: 'entity.too.deep' }));
    expect(check(`${'{"a":'.repeat(MAX_JSON_DEPTH + 1)}1${'}'.repeat(MAX_JSON_DEPTH + 1)}`)).toThrow(expect.objectContaining({ status: 400 }));
  });

  it('refuses 100,000 levels', () => {
    expect(check(nested(100_000))).toThrow(expect.objectContaining({ type: 'entity.too.deep' }));
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(check(JSON.stringify({ text: '['.repeat(1000), quoted: `\\"${'{'.repeat(1000)}` }))).not.toThrow();
    expect(check(`["\\\\", ${nested(MAX_JSON_DEPTH)}]`)).toThrow(expect.objectContaining({ type: 'entity.too.deep' }));
  });

  it('counts depth, not the number of brackets', () => {
    expect(check(`[${Array.from({ length: 10_000 }, () => '[]').join(',')}]`)).not.toThrow();
  });

  it('refuses a charset other than UTF-8 (RFC 8259 §8.1) as unsupported', () => {
    expect(check('[]', 'utf-16le')).toThrow(expect.objectContaining({ status: 415, type: 'charset.unsupported' }));
  });
});

describe('refuseDeepJson on bytes that are not UTF-8', () => {
  it.each([
    ['a stray continuation byte', '{"a":"x\xffy"}'],
    ['an overlong NUL (C0 80)', '{"a":"x\xc0\x80y"}'],
    ['a UTF-8-encoded surrogate (CESU)', '{"a":"x\xed\xa0\x80y"}'],
    ['a truncated sequence at the end', '["\xe2\x82'],
  ])('refuses %s with a 400 of its own type', (_label, latin1) => {
    expect(() => refuseDeepJson(undefined, undefined, Buffer.from(latin1, 'latin1'), 'utf-8')).toThrow(expect.objectContaining({ status: 400, type: 'entity.not.utf8' }));
  });

  it('accepts multi-byte UTF-8', () => {
    expect(check(JSON.stringify({ a: 'café 😀 ü' }))).not.toThrow();
  });
});
