import { safe } from './terminal-text';

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
