import { safe, terminalJson } from './terminal-text';

describe('safe (text from the server or the database, for the terminal)', () => {
  it('escapes C0 and C1 controls as \\xNN, as before', () => {
    expect(safe('a\u001b[2J\r\n\u009bb\u0000')).toBe('a\\x1b[2J\\x0d\\x0a\\x9bb\\x00');
  });

  it('escapes bidi overrides and isolates, zero-width and line-separator characters as \\u{…}: shown in stored order', () => {
    expect(safe('CN=evil\u202egnp.exe')).toBe('CN=evil\\u{202E}gnp.exe');
    expect(safe('\u2066x\u2069\u200b\u200e\u2028\ufeff\u061c')).toBe('\\u{2066}x\\u{2069}\\u{200B}\\u{200E}\\u{2028}\\u{FEFF}\\u{61C}');
  });

  it('escapes a lone surrogate and keeps printable text, letters of any script and emoji, as they are', () => {
    expect(safe('a\ud800b')).toBe('a\\u{D800}b');
    expect(safe('Zürich 東京 ✓ 🙂 node-1.rack-a')).toBe('Zürich 東京 ✓ 🙂 node-1.rack-a');
  });
});

describe('terminalJson (a command\'s --json output)', () => {
  // A runtime-policy path as a machine could measure it: C1 CSI, bidi override and isolate, line separator, DEL, a tag character (Cf, astral).
  const hostile = { digests: { '/usr/bin/\u009b2J\u202egnp.exe\u2066\u2028\u007f\u{E0041}\u001b': ['ab'] }, name: 'Zürich 東京 🙂' };

  it('writes no raw C1, bidi, format or separator character: each is a \\u escape, and the text parses to the same value', () => {
    const text = terminalJson(hostile);
    expect([...text].filter((c) => /[\p{Cc}\p{Cf}\u2028\u2029]/u.test(c))).toEqual([]);
    expect(text).toBe('{"digests":{"/usr/bin/\\u009b2J\\u202egnp.exe\\u2066\\u2028\\u007f\\udb40\\udc41\\u001b":["ab"]},"name":"Zürich 東京 🙂"}');
    expect(JSON.parse(text)).toEqual(hostile);
  });

  it('is JSON.stringify where nothing needs escaping, indented too (its line feeds are layout, not escaped)', () => {
    const plain = { a: ['x', 1, null], b: { c: 'Zürich \n tab\t' } };
    expect(terminalJson(plain)).toBe(JSON.stringify(plain));
    expect(terminalJson(plain, 2)).toBe(JSON.stringify(plain, null, 2));
    const indented = terminalJson(hostile, 2);
    expect(indented.startsWith('{\n  "digests": {\n    "/usr/bin/\\u009b2J\\u202e')).toBe(true);
    expect([...indented].filter((c) => /[\p{Cc}\p{Cf}\u2028\u2029]/u.test(c) && c !== '\n')).toEqual([]);
    expect(JSON.parse(indented)).toEqual(hostile);
  });
});
