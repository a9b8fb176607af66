import { AuditDetailsError, canonicalJson } from './canonical-json';

function refusal(value: unknown): AuditDetailsError {
  try {
    canonicalJson(value);
  } catch (error) {
    if (error instanceof AuditDetailsError) {
      return error;
    }
    throw error;
  }
  throw new Error(`expected canonicalJson to refuse ${String(value)}`);
}

describe('canonicalJson', () => {
  it('writes scalars exactly as JSON does', () => {
    expect(canonicalJson(null)).toBe('null');
    expect(canonicalJson(true)).toBe('true');
    expect(canonicalJson(false)).toBe('false');
    expect(canonicalJson(0)).toBe('0');
    expect(canonicalJson(-1.5)).toBe('-1.5');
    expect(canonicalJson(1e21)).toBe('1e+21');
    expect(canonicalJson('a "quoted" \\ line\n')).toBe('"a \\"quoted\\" \\\\ line\\n"');
    expect(canonicalJson('ü€😀')).toBe('"ü€😀"');
    expect(canonicalJson([])).toBe('[]');
    expect(canonicalJson({})).toBe('{}');
  });

  it('sorts object keys at every depth and keeps array order', () => {
    const value = {
      zeta: 1,
      alpha: { y: [3, 1, 2], b: { d: true, c: null } },
      mid: [{ q: 1, p: 2 }, 'x'],
      Alpha: 'uppercase sorts before lowercase',
      '10': 'ten',
      '9': 'nine',
    };
    expect(canonicalJson(value)).toBe(
      '{"10":"ten","9":"nine","Alpha":"uppercase sorts before lowercase",' +
        '"alpha":{"b":{"c":null,"d":true},"y":[3,1,2]},"mid":[{"p":2,"q":1},"x"],"zeta":1}',
    );
  });

  it('has no whitespace and parses back to the same value', () => {
    const value = { b: [1, { d: 'x y', c: [] }], a: { nested: { deeper: 'ok' } } };
    const text = canonicalJson(value);
    expect(text).not.toMatch(/\s(?=(?:[^"]*"[^"]*")*[^"]*$)/);
    expect(JSON.parse(text)).toEqual(value);
  });

  it('is equal for equal content whatever the key order (as after a jsonb round trip)', () => {
    const written = { machine: 'SN123', ekPubHash: 'ab'.repeat(32), checks: { chain: 'ok', pcrs: { '7': 'x', '0': 'y' } } };
    // jsonb keeps keys sorted by length then bytes; simulate a store that hands them back in another order.
    const reordered = JSON.parse(
      JSON.stringify({ checks: { pcrs: { '0': 'y', '7': 'x' }, chain: 'ok' }, ekPubHash: 'ab'.repeat(32), machine: 'SN123' }),
    ) as unknown;
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(written));
    expect(canonicalJson(reordered)).toBe(canonicalJson(written));
    expect(canonicalJson(JSON.parse(JSON.stringify(written)))).toBe(canonicalJson(written));
  });

  it('differs when content differs', () => {
    expect(canonicalJson({ a: 1 })).not.toBe(canonicalJson({ a: '1' }));
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
    expect(canonicalJson({ a: null })).not.toBe(canonicalJson({}));
  });

  it('accepts objects without a prototype', () => {
    const bare = Object.create(null) as Record<string, unknown>;
    bare.b = 2;
    bare.a = 1;
    expect(canonicalJson(bare)).toBe('{"a":1,"b":2}');
  });

  describe('refuses what jsonb would not give back unchanged', () => {
    class Machine {
      serial = 'SN1';
    }
    it.each([
      ['undefined', undefined, 'details has type undefined, which is not JSON'],
      ['a function', () => 1, 'details has type function, which is not JSON'],
      ['a symbol', Symbol('s'), 'details has type symbol, which is not JSON'],
      ['a bigint', 10n, 'details has type bigint, which is not JSON'],
      ['NaN', Number.NaN, 'details is not a finite number'],
      ['Infinity', Number.POSITIVE_INFINITY, 'details is not a finite number'],
      ['-Infinity', Number.NEGATIVE_INFINITY, 'details is not a finite number'],
      ['a Date', new Date(0), 'details must be plain JSON, not a Date'],
      ['a class instance', new Machine(), 'details must be plain JSON, not a Machine'],
      ['a Map', new Map([['a', 1]]), 'details must be plain JSON, not a Map'],
      ['a Buffer', Buffer.from('x'), 'details must be plain JSON, not a Buffer'],
    ])('%s', (_label, value, message) => {
      expect(refusal(value).message).toBe(message);
    });

    it.each([
      ['an undefined property', { a: { b: undefined } }, 'details.a.b has type undefined, which is not JSON'],
      ['a function property', { run: () => 1 }, 'details.run has type function, which is not JSON'],
      ['NaN in an array', { values: [1, Number.NaN] }, 'details.values[1] is not a finite number'],
      ['a Date deep inside', { at: [{ when: new Date(0) }] }, 'details.at[0].when must be plain JSON, not a Date'],
      ['a bigint property', { seq: 1n }, 'details.seq has type bigint, which is not JSON'],
    ])('%s, naming where it is', (_label, value, message) => {
      const error = refusal(value);
      expect(error.name).toBe('AuditDetailsError');
      expect(error.message).toBe(message);
    });

    it('uses the path it is given in messages', () => {
      expect(() => canonicalJson(undefined, 'record.details')).toThrow('record.details has type undefined');
    });
  });

  describe('refuses secret-looking keys', () => {
    it.each([
      'password',
      'Password',
      'dbPassword',
      'passphrase',
      'secret',
      'clientSecret',
      'secretValue',
      'privateKey',
      'private_key',
      'PRIVATEKEY',
      'masterKey',
      'master_key',
      'token',
      'Token',
      'key',
      'KEY',
    ])('%s', (key) => {
      const error = refusal({ ok: 1, nested: { [key]: 'x' } });
      expect(error.message).toBe(`details.nested.${key} looks like a secret; audit records never carry secrets`);
    });

    it('refuses them even when the value is harmless, and inside arrays', () => {
      expect(refusal({ list: [{ password: null }] }).message).toBe(
        'details.list[0].password looks like a secret; audit records never carry secrets',
      );
    });

    it.each(['ekPubHash', 'tokenId', 'keyId', 'akName', 'certifiedKeyName', 'tokenScope', 'publicKey', 'keyslot', 'monkey'])(
      'accepts %s',
      (key) => {
        expect(canonicalJson({ [key]: 'v' })).toBe(`{${JSON.stringify(key)}:"v"}`);
      },
    );
  });
});
