import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODE_PATTERN, type ErrorCodeTable, GENERIC_ERROR_CODES } from '@rackseal/api-contracts';
import { API_TOKEN_ERROR_CODES } from '@rackseal/api-tokens';
import { APPROVAL_ERROR_CODES, ATTESTATION_ERROR_CODES, KEY_ERROR_CODES, POLICY_ERROR_CODES } from '@rackseal/attestation';
import { AUDIT_ERROR_CODES } from '@rackseal/audit';
import { DELIVERY_ERROR_CODES } from '@rackseal/deliveries';
import { INVENTORY_ERROR_CODES } from '@rackseal/inventory';
import { MACHINE_ERROR_CODES } from '@rackseal/machines';
import { CA_ERROR_CODES, SECRET_ERROR_CODES } from '@rackseal/secrets';
import { VENDOR_CA_ERROR_CODES } from '@rackseal/vendor-cas';
import { DOMAIN_ERROR_CODES, genericCodeOf, KIND_STATUS } from '../apps/control-plane/src/http/error-codes';
import { NODE_REQUEST_ERROR_CODES } from '../apps/control-plane/src/node-api/node-request-errors';

const ROOT = join(__dirname, '..');

/** Each library with codes: its table, the prefix its codes share, and its directory. */
const LIBRARIES: ReadonlyArray<[string, string, ErrorCodeTable]> = [
  ['api-tokens', 'token', API_TOKEN_ERROR_CODES],
  ['attestation', 'attestation', ATTESTATION_ERROR_CODES],
  // libs/attestation owns the PCR policies too: their operations refuse with `policy.*` codes.
  ['attestation', 'policy', POLICY_ERROR_CODES],
  // …and key certification: `key.*` codes.
  ['attestation', 'key', KEY_ERROR_CODES],
  // …and the PCR approvals: `approval.*` codes.
  ['attestation', 'approval', APPROVAL_ERROR_CODES],
  ['audit', 'audit', AUDIT_ERROR_CODES],
  ['deliveries', 'delivery', DELIVERY_ERROR_CODES],
  ['inventory', 'inventory', INVENTORY_ERROR_CODES],
  ['machines', 'machine', MACHINE_ERROR_CODES],
  ['secrets', 'secret', SECRET_ERROR_CODES],
  // libs/secrets owns the cluster CAs too: `ca.*` codes.
  ['secrets', 'ca', CA_ERROR_CODES],
  ['vendor-cas', 'vendor-ca', VENDOR_CA_ERROR_CODES],
];

/** `| \`code\` | 404 | …` rows of a README's table (a library's, or the repository's: '.'), those with the prefix ('' for all). */
function readmeCodes(lib: string, prefix: string): Map<string, number> {
  const readme = readFileSync(lib === '.' ? join(ROOT, 'README.md') : join(ROOT, 'libs', lib, 'README.md'), 'utf8');
  return new Map(
    [...readme.matchAll(/^\| `([a-z][a-z0-9.-]*)` \| (\d{3}) \|/gm)].filter((m) => prefix === '' || m[1]!.startsWith(`${prefix}.`)).map((m) => [m[1]!, Number(m[2])]),
  );
}

/** Code-shaped string literals (`'machine.not-found'`) in a library's non-test sources; audit actions (`action: 'token.issued'`, on lines of their own) have the same shape and are not codes. */
function codesInSources(lib: string, prefix: string): Set<string> {
  const dir = join(ROOT, 'libs', lib, 'src');
  const found = new Set<string>();
  const literal = new RegExp(`'(${prefix.replace('-', '\\-')}\\.[a-z][a-z0-9-]*)'`, 'g');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.spec.ts'))) {
    const lines = readFileSync(join(dir, file), 'utf8').split('\n').filter((line) => !/\baction: /.test(line));
    for (const m of lines.join('\n').matchAll(literal)) {
      found.add(m[1]!);
    }
  }
  return found;
}

describe('domain error codes (issue 10 item 2)', () => {
  it.each(LIBRARIES)('libs/%s: every code is well formed, in its README with the filter\'s status, and in the filter\'s table', (lib, prefix, table) => {
    const listed = readmeCodes(lib, prefix);
    for (const [code, kind] of Object.entries(table)) {
      expect(code).toMatch(ERROR_CODE_PATTERN);
      expect(code.startsWith(`${prefix}.`)).toBe(true);
      expect(DOMAIN_ERROR_CODES[code]).toBe(kind);
      expect({ code, status: listed.get(code) }).toEqual({ code, status: KIND_STATUS[kind] });
    }
    // …and the README lists no code the library does not have.
    expect([...listed.keys()].sort()).toEqual(Object.keys(table).sort());
  });

  it.each(LIBRARIES)('libs/%s: every code its sources name is in its table', (lib, prefix, table) => {
    const named = codesInSources(lib, prefix);
    expect(named.size).toBeGreaterThan(0);
    expect([...named].filter((code) => !(code in table))).toEqual([]);
  });

  it('every code a README lists is in one of its library\'s tables (a library may own several prefixes)', () => {
    for (const lib of new Set(LIBRARIES.map(([name]) => name))) {
      const tables = LIBRARIES.filter(([name]) => name === lib);
      const listed = [...readmeCodes(lib, '').keys()];
      expect([lib, listed.filter((code) => !tables.some(([, , table]) => code in table))]).toEqual([lib, []]);
    }
  });

  it('the node request guard\'s codes (the control plane\'s own): each a 401, listed in the README\'s node API section', () => {
    const listed = readmeCodes('.', 'node');
    expect(Object.keys(NODE_REQUEST_ERROR_CODES).length).toBe(8);
    for (const [code, kind] of Object.entries(NODE_REQUEST_ERROR_CODES)) {
      expect(code).toMatch(ERROR_CODE_PATTERN);
      expect(DOMAIN_ERROR_CODES[code]).toBe(kind);
      expect({ code, status: listed.get(code) }).toEqual({ code, status: 401 });
    }
    expect([...listed.keys()].sort()).toEqual(Object.keys(NODE_REQUEST_ERROR_CODES).sort());
  });

  it('the filter knows exactly the libraries\' and the node guard\'s codes, each library with its own prefix', () => {
    const all = [...LIBRARIES.flatMap(([, , table]) => Object.keys(table)), ...Object.keys(NODE_REQUEST_ERROR_CODES)];
    expect(new Set(all).size).toBe(all.length);
    expect(Object.keys(DOMAIN_ERROR_CODES).sort()).toEqual(all.sort());
  });

  it('the rate limit\'s 429 has its generic code, documented in the generic table, the README and the error body (issue 15)', () => {
    expect(genericCodeOf(429, false)).toBe('request.rate-limited');
    expect(GENERIC_ERROR_CODES['request.rate-limited']).toContain('(429)');
    expect(readFileSync(join(ROOT, 'README.md'), 'utf8')).toContain('`request.rate-limited` (429');
    expect(readFileSync(join(ROOT, 'apps/control-plane/src/http/error-body.ts'), 'utf8')).toContain('`request.rate-limited`');
  });
});
