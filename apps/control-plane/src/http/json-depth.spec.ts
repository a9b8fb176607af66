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
