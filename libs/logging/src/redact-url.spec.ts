import { redactUrl } from './redact-url';

describe('redactUrl', () => {
  it.each([
    ['/v1/audit', '/v1/audit'],
    ['/v1/audit?after=5', '/v1/audit?after=[redacted]'],
    [`/v1/audit?limit=1&access_token=rks_${'A'.repeat(43)}`, '/v1/audit?limit=[redacted]&access_token=[redacted]'],
    // A bare token as a parameter name, and names that are not plain identifiers.
    [`/v1/audit?rks_${'B'.repeat(43)}`, '/v1/audit?[redacted]'],
    ['/v1/audit?rks_short=1', '/v1/audit?[redacted]'],
    ['/v1/audit?a%00b=1&%1B[2J=2', '/v1/audit?[redacted]&[redacted]'],
    ['/v1/audit?flag', '/v1/audit?flag=[redacted]'],
    ['/v1/audit?', '/v1/audit?'],
    [`/v1/tokens/rks_${'C'.repeat(43)}/x`, '/v1/tokens/rks_[redacted]/x'],
  ])('%s is logged as %s', (url, logged) => {
    expect(redactUrl(url)).toBe(logged);
  });

  it('keeps at most 20 parameter names and counts the rest', () => {
    const url = `/v1/audit?${Array.from({ length: 25 }, (_, i) => `p${i}=secret${i}`).join('&')}`;
    const logged = redactUrl(url);
    expect(logged).not.toContain('secret');
    expect(logged.endsWith('&p19=[redacted]&…5-more')).toBe(true);
  });
});
