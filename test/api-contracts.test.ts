/**
 * Issue 10 item 3: the operator API's wire shapes, enums, patterns and limits are declared once, in
 * @rackseal/api-contracts. The control plane's OpenAPI document (generated from DTOs that implement
 * the contract) lists the contract's enums; no other file under apps/ or libs/ writes them out again;
 * the CLI reads its answers with the contract's types, not copies of its own.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import {
  AUDIT_OUTCOMES,
  CA_KINDS,
  GROUP_PATTERN,
  IMPORT_RECORD_STATUSES,
  IMPORT_STATUSES,
  MACHINE_STATES,
  MAX_IMPORT_FILE_NAME_LENGTH,
  MAX_UPLOAD_FILES,
  ROW_PROBLEM_REASONS,
  TOKEN_NAME_MAX_LENGTH,
  VENDOR_CA_ADD_STATUSES,
  VENDOR_CA_DUPLICATE_OF,
} from '@rackseal/api-contracts';
import { repoRoot } from './support/repo-root';

const ROOT = repoRoot();

type Schema = { properties: Record<string, { enum?: string[]; items?: { enum?: string[] }; maxLength?: number; maxItems?: number; pattern?: string }>; required?: string[] };
const OPENAPI = JSON.parse(readFileSync(join(ROOT, 'openapi.json'), 'utf8')) as {
  components: { schemas: Record<string, Schema> };
  paths: Record<string, Record<string, { responses: Record<string, { content?: { 'application/json': { schema: { $ref?: string } } } }>; parameters?: { name: string; schema: { maxLength?: number } }[] }>>;
};

function property(schema: string, name: string): Schema['properties'][string] {
  const found = OPENAPI.components.schemas[schema]?.properties[name];
  if (found === undefined) {
    throw new Error(`openapi.json: ${schema} has no property ${name}`);
  }
  return found;
}

/** The .ts files under apps/ and libs/, as [path relative to the root, text]. */
function sources(): [string, string][] {
  const out: [string, string][] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') {
          walk(path);
        }
      } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts')) {
        out.push([relative(ROOT, path), readFileSync(path, 'utf8')]);
      }
    }
  };
  walk(join(ROOT, 'apps'));
  walk(join(ROOT, 'libs'));
  return out;
}

/** A list written out as a TypeScript literal, with either quote style and any spacing. */
function literalList(values: readonly string[]): RegExp {
  const escaped = values.map((v) => `['"]${v.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&')}['"]`);
  return new RegExp(`\\[\\s*${escaped.join('\\s*,\\s*')}\\s*,?\\s*\\]`);
}

describe('the operator API contract', () => {
  it.each([
    ['RowProblemDto', 'reason', ROW_PROBLEM_REASONS],
    ['ImportSummaryDto', 'status', IMPORT_STATUSES],
    ['MachineDto', 'state', MACHINE_STATES],
    ['AuditRecordDto', 'outcome', AUDIT_OUTCOMES],
    ['VendorCaDto', 'kind', CA_KINDS],
    ['VendorCaAddResultDto', 'kind', CA_KINDS],
    ['VendorCaAddResultDto', 'status', VENDOR_CA_ADD_STATUSES],
    ['VendorCaAddResultDto', 'duplicateOf', VENDOR_CA_DUPLICATE_OF],
  ] as const)('openapi.json: %s.%s lists the contract enum', (schema, name, values) => {
    expect(property(schema, name).enum).toEqual([...values]);
  });

  it('openapi.json takes the limits from it', () => {
    expect(property('CreateTokenDto', 'name').maxLength).toBe(TOKEN_NAME_MAX_LENGTH);
    expect(property('AddVendorCasDto', 'files').maxItems).toBe(MAX_UPLOAD_FILES);
    const importParameters = OPENAPI.paths['/v1/inventory/imports']!.post!.parameters ?? [];
    expect(importParameters.find((p) => p.name === 'fileName')?.schema).toBeDefined();
    expect(MAX_IMPORT_FILE_NAME_LENGTH).toBe(255);
  });

  it('GET /v1/inventory/imports/:id is documented as what it answers: a recorded import (with startedBy; running and failed records too)', () => {
    const ok = OPENAPI.paths['/v1/inventory/imports/{id}']!.get!.responses['200']!;
    expect(ok.content?.['application/json'].schema.$ref).toBe('#/components/schemas/RecordedImportDto');
    expect(property('RecordedImportDto', 'status').enum).toEqual([...IMPORT_RECORD_STATUSES]);
    expect(property('RecordedImportDto', 'startedBy')).toBeDefined();
    expect(OPENAPI.components.schemas['RecordedImportDto']?.required).toEqual(expect.arrayContaining(['startedBy', 'counts', 'problems', 'startedAt', 'finishedAt']));
  });

  it.each([
    ['the group pattern', new RegExp(GROUP_PATTERN.source.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))],
    ['the row-problem reasons', literalList(ROW_PROBLEM_REASONS)],
    ['the import statuses', literalList(IMPORT_STATUSES)],
    ['the machine states', literalList(MACHINE_STATES)],
    ['the audit outcomes', literalList(AUDIT_OUTCOMES)],
    ['the CA kinds', literalList(CA_KINDS)],
    ['the vendor CA add statuses', literalList(VENDOR_CA_ADD_STATUSES)],
    ['the vendor CA duplicate kinds', literalList(VENDOR_CA_DUPLICATE_OF)],
  ])('%s are written out only in libs/api-contracts', (_what, written) => {
    const where = sources()
      .filter(([, text]) => written.test(text))
      .map(([path]) => path);
    expect(where.length).toBeGreaterThan(0);
    expect(where.filter((path) => !path.startsWith('libs/api-contracts/'))).toEqual([]);
  });

  it.each([
    ['the CA kinds', "'root' | 'intermediate'"],
    ['the vendor CA add statuses', "'added' | 'duplicate' | 'rejected'"],
    ['the import statuses', "'succeeded' | 'partial' | 'refused'"],
    ['the vendor CA duplicate kinds', "'stored' | 'upload'"],
  ])('%s are not typed again as a union anywhere', (_what, union) => {
    expect(sources().filter(([, text]) => text.includes(union)).map(([path]) => path)).toEqual([]);
  });

  it('the CLI declares no wire shape of its own: its answers are typed with the contract', () => {
    const shapes = /^(?:export\s+)?(?:interface|type)\s+(ImportSummary|ImportRecord|RecordedImport|Machine|IssuedToken|TokenSummary|AuditRecord|Verdict|AddResult|AddResponse|VendorCa\w*)\b/m;
    const found = sources()
      .filter(([path, text]) => path.startsWith('apps/cli/') && shapes.test(text))
      .map(([path, text]) => `${path}: ${shapes.exec(text)?.[1] ?? ''}`);
    expect(found).toEqual([]);
  });
});
