import { tokenNameProblem } from './token-name';

describe('tokenNameProblem', () => {
  it.each(['admin', 'inventory importer (rack 7)', 'ci-déploiement', '運用', 'x'.repeat(100), '  padded  '])('accepts %j', (name) => {
    expect(tokenNameProblem(name)).toBeUndefined();
  });

  it.each([
    ['', 'token name must be 1-100 characters'],
    ['   ', 'token name must be 1-100 characters'],
    ['x'.repeat(101), 'token name must be 1-100 characters'],
    ['a\u0000b', 'token name must not contain control characters (found U+0000)'],
    ['\u001b[31mred', 'token name must not contain control characters (found U+001B)'],
    ['two\nlines', 'token name must not contain control characters (found U+000A)'],
    ['tab\there', 'token name must not contain control characters (found U+0009)'],
    ['del\u007f', 'token name must not contain control characters (found U+007F)'],
    ['csi\u009b2J', 'token name must not contain control characters (found U+009B)'],
    ['sep\u2028', 'token name must not contain control characters (found U+2028)'],
    ['rtl\u202etxt.exe', 'token name must not contain control characters (found U+202E)'],
    ['iso\u2066x\u2069', 'token name must not contain control characters (found U+2066)'],
    ['lrm\u200e', 'token name must not contain control characters (found U+200E)'],
    ['alm\u061c', 'token name must not contain control characters (found U+061C)'],
    // invisible format characters (Unicode Cf): `adm\u200bin` would pass for `admin` in a token list
    ['adm\u200bin', 'token name must not contain control characters (found U+200B)'],
    ['zw\u200dj', 'token name must not contain control characters (found U+200D)'],
    ['word\u2060joiner', 'token name must not contain control characters (found U+2060)'],
    ['\ufeffbom', 'token name must not contain control characters (found U+FEFF)'],
    ['soft\u00adhyphen', 'token name must not contain control characters (found U+00AD)'],
  ])('refuses %j', (name, problem) => {
    expect(tokenNameProblem(name)).toBe(problem);
  });
});
