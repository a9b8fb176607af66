/**
 * The layering rules live in eslint.config.mjs; these tests prove the rules really fire where they
 * should (and only there), and that the tree as committed is clean.
 *
 * ESLint loads eslint.config.mjs with a dynamic import(), which jest's module sandbox refuses
 * (it needs --experimental-vm-modules). So the ESLint Node API runs in a plain child node process
 * that lints every snippet in one go and answers in JSON.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const REPO_ROOT = join(__dirname, '..');

const NEST_IMPORT = "import { Injectable } from '@nestjs/common';\nexport const x = Injectable;\n";

interface Finding {
  ruleId: string | null;
  severity: number;
  message: string;
}

interface Snippet {
  code: string;
  path: string;
}

const RUNNER = `
const { ESLint } = require('eslint');
let input = '';
process.stdin.setEncoding('utf8').on('data', (c) => (input += c)).on('end', async () => {
  const request = JSON.parse(input);
  const eslint = new ESLint({ cwd: request.cwd });
  const snippets = [];
  for (const s of request.snippets) {
    const [result] = await eslint.lintText(s.code, { filePath: require('node:path').join(request.cwd, s.path) });
    snippets.push(result.messages.map(({ ruleId, severity, message }) => ({ ruleId, severity, message })));
  }
  let tree = null;
  if (request.lintTree) {
    const started = Date.now();
    const results = await eslint.lintFiles(['.']);
    tree = {
      files: results.length,
      ms: Date.now() - started,
      problems: results.flatMap((r) =>
        r.messages.map((m) => r.filePath.slice(request.cwd.length + 1) + ':' + m.line + ':' + m.column + ' ' + (m.ruleId || '') + ' ' + m.message),
      ),
    };
  }
  process.stdout.write(JSON.stringify({ snippets, tree }));
});
`;

/** Lints each snippet as if it were the file at its path, and optionally the whole tree. */
function runEslint(snippets: readonly Snippet[], lintTree: boolean): { snippets: Finding[][]; tree: { files: number; ms: number; problems: string[] } | null } {
  const run = spawnSync(process.execPath, ['-e', RUNNER], {
    cwd: REPO_ROOT,
    input: JSON.stringify({ cwd: REPO_ROOT, snippets, lintTree }),
    encoding: 'utf8',
    // Type-aware linting of the whole tree: ~20 s on a quiet machine, several times that on a loaded one.
    timeout: 280_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.status !== 0) {
    throw new Error(`eslint runner exited with ${String(run.status ?? run.signal)}:\n${run.stderr}`);
  }
  return JSON.parse(run.stdout) as ReturnType<typeof runEslint>;
}

const SNIPPETS = {
  tpm2Nest: { code: NEST_IMPORT, path: 'libs/tpm2/src/probe.ts' },
  tpm2NestCore: {
    code: "import { NestFactory } from '@nestjs/core';\nexport const f = NestFactory;\n",
    path: 'libs/tpm2/src/structures/probe.ts',
  },
  tpm2Config: { code: "import { loadConfig } from '@rackseal/config';\nexport const c = loadConfig;\n", path: 'libs/tpm2/src/probe.ts' },
  tpm2Typeorm: { code: "import { DataSource } from 'typeorm';\nexport const d = DataSource;\n", path: 'libs/tpm2/src/probe.ts' },
  tpm2Redis: { code: "import IORedis from 'ioredis';\nexport const r = IORedis;\n", path: 'libs/tpm2/src/probe.ts' },
  tpm2Allowed: {
    code: "import { createHash } from 'node:crypto';\nimport { TPM_ST } from '@rackseal/tpm2';\nexport const h = [createHash, TPM_ST];\n",
    path: 'libs/tpm2/src/probe.ts',
  },
  auditNest: { code: NEST_IMPORT, path: 'libs/audit/src/probe.ts' },
  controlPlaneNest: { code: NEST_IMPORT, path: 'apps/control-plane/src/probe.ts' },
  agentNest: { code: NEST_IMPORT, path: 'apps/agent/src/probe.ts' },
  agentCli: { code: "import { CliError } from '../../cli/src/cli-error';\nexport const e = CliError;\n", path: 'apps/agent/src/probe.ts' },
  agentCliFromSubfolder: {
    code: "export { registerAudit } from '../../../cli/src/commands/audit.command';\n",
    path: 'apps/agent/src/commands/probe.ts',
  },
  agentCliByBaseUrl: { code: "import { buildProgram } from 'apps/cli/src/main';\nexport const b = buildProgram;\n", path: 'apps/agent/src/probe.ts' },
  agentTypeorm: { code: "import { DataSource } from 'typeorm';\nexport const d = DataSource;\n", path: 'apps/agent/src/probe.ts' },
  agentAllowed: {
    code:
      "import { CliError } from '@rackseal/command-line';\nimport { TPM_ST } from '@rackseal/tpm2';\nimport { readCertificate } from '@rackseal/ek-trust';\n" +
      "import { registerTpm } from './commands/tpm.command';\nexport const a = [CliError, TPM_ST, readCertificate, registerTpm];\n",
    path: 'apps/agent/src/probe.ts',
  },
  nodeApiContractsNest: { code: NEST_IMPORT, path: 'libs/node-api-contracts/src/probe.ts' },
  nodeApiContractsValidator: { code: "import { IsString } from 'class-validator';\nexport const v = IsString;\n", path: 'libs/node-api-contracts/src/probe.ts' },
  nodeApiContractsTypeorm: { code: "import { DataSource } from 'typeorm';\nexport const d = DataSource;\n", path: 'libs/node-api-contracts/src/probe.ts' },
  nodeApiContractsTpm2: { code: "import { TPM_ST } from '@rackseal/tpm2';\nexport const t = TPM_ST;\n", path: 'libs/node-api-contracts/src/probe.ts' },
  apiContractsNest: { code: NEST_IMPORT, path: 'libs/api-contracts/src/probe.ts' },
  agentNodeApiContracts: {
    code: "import { NODE_API_BASE_PATH, nodeApiPath } from '@rackseal/node-api-contracts';\nexport const p = [NODE_API_BASE_PATH, nodeApiPath('registrations')];\n",
    path: 'apps/agent/src/probe.ts',
  },
  cliCommandLine: { code: "import { CliError } from '@rackseal/command-line';\nexport const e = CliError;\n", path: 'apps/cli/src/probe.ts' },
  commandLineTpm2: { code: "import { TPM_ST } from '@rackseal/tpm2';\nexport const t = TPM_ST;\n", path: 'libs/command-line/src/probe.ts' },
  commandLineNest: { code: NEST_IMPORT, path: 'libs/command-line/src/probe.ts' },
  envelopeNest: { code: NEST_IMPORT, path: 'libs/envelope/src/probe.ts' },
  envelopeAudit: { code: "import { AuditLog } from '@rackseal/audit';\nexport const a = AuditLog;\n", path: 'libs/envelope/src/probe.ts' },
  envelopeAllowed: {
    code: "import { createHash } from 'node:crypto';\nimport { SecretBytes } from '@rackseal/config';\nexport const e = [createHash, SecretBytes];\n",
    path: 'libs/envelope/src/probe.ts',
  },
  nodeIdentityNest: { code: NEST_IMPORT, path: 'libs/node-identity/src/probe.ts' },
  nodeIdentityConfigIndex: { code: "import { SecretBytes } from '@rackseal/config';\nexport const s = SecretBytes;\n", path: 'libs/node-identity/src/probe.ts' },
  nodeIdentityTpm2: { code: "import { TPM_ST } from '@rackseal/tpm2';\nexport const t = TPM_ST;\n", path: 'libs/node-identity/src/probe.ts' },
  nodeIdentityAllowed: {
    code: "import { createHmac } from 'node:crypto';\nimport { SecretBytes } from '@rackseal/config/secret-bytes';\nexport const n = [createHmac, SecretBytes];\n",
    path: 'libs/node-identity/src/probe.ts',
  },
  agentNodeIdentity: {
    code: "import { signNodeRequest } from '@rackseal/node-identity';\nexport const s = signNodeRequest;\n",
    path: 'apps/agent/src/probe.ts',
  },
  pcrPolicyNest: { code: NEST_IMPORT, path: 'libs/pcr-policy/src/probe.ts' },
  pcrPolicyTypeorm: { code: "import { DataSource } from 'typeorm';\nexport const d = DataSource;\n", path: 'libs/pcr-policy/src/probe.ts' },
  pcrPolicyMachines: { code: "import { MachinesRepository } from '@rackseal/machines';\nexport const m = MachinesRepository;\n", path: 'libs/pcr-policy/src/probe.ts' },
  pcrPolicyAllowed: {
    code:
      "import { createHash } from 'node:crypto';\nimport { parseEventLog } from '@rackseal/tpm2';\nimport { findUnprintable } from '@rackseal/ek-trust';\n" +
      'export const p = [createHash, parseEventLog, findUnprintable];\n',
    path: 'libs/pcr-policy/src/probe.ts',
  },
  wrappingNest: { code: NEST_IMPORT, path: 'libs/wrapping/src/probe.ts' },
  wrappingSecrets: { code: "import { Secrets } from '@rackseal/secrets';\nexport const s = Secrets;\n", path: 'libs/wrapping/src/probe.ts' },
  wrappingAllowed: {
    code:
      "import { createCipheriv } from 'node:crypto';\nimport { createImportBlob } from '@rackseal/tpm2';\nimport { approvalDigest } from '@rackseal/pcr-policy';\n" +
      'export const w = [createCipheriv, createImportBlob, approvalDigest];\n',
    path: 'libs/wrapping/src/probe.ts',
  },
  agentWrapping: { code: "import { parseEnvelope } from '@rackseal/wrapping';\nexport const p = parseEnvelope;\n", path: 'apps/agent/src/probe.ts' },
  attestationVendorCas: { code: "import { loadTrustStore } from '@rackseal/vendor-cas';\nexport const l = loadTrustStore;\n", path: 'libs/attestation/src/probe.ts' },
  attestationAllowed: {
    code: "import { MachinesRepository } from '@rackseal/machines';\nimport { AuditLog } from '@rackseal/audit';\nexport const a = [MachinesRepository, AuditLog];\n",
    path: 'libs/attestation/src/probe.ts',
  },
  controlPlaneSql: {
    code:
      "export async function rows(db: { query(sql: string, p: unknown[]): Promise<unknown> }, id: string): Promise<unknown> {\n" +
      "  return db.query('SELECT * FROM inventory_imports WHERE id = $1', [id]);\n}\n",
    path: 'apps/control-plane/src/inventory/probe.ts',
  },
  workerSqlTemplate: {
    code: 'export const sql = (table: string): string => `UPDATE ${table}\n  SET state = $1 WHERE id = $2`;\n',
    path: 'apps/worker/src/jobs/probe.ts',
  },
  controlPlaneDataSource: {
    code: "import { DataSource } from 'typeorm';\nexport class Probe {\n  constructor(readonly db: DataSource) {}\n}\n",
    path: 'apps/control-plane/src/probe.ts',
  },
  workerRepository: {
    code:
      "import { InjectRepository } from '@nestjs/typeorm';\nimport type { Repository } from 'typeorm';\n" +
      'export const probe = (r: Repository<object>): unknown => [InjectRepository, r];\n',
    path: 'apps/worker/src/probe.ts',
  },
  controlPlaneNoSql: {
    code:
      "import { MachinesRepository } from '@rackseal/machines';\nimport { MoreThan } from 'typeorm';\n" +
      "export const m = [MachinesRepository, MoreThan, 'select a machine from the list, then update its group'];\n",
    path: 'apps/control-plane/src/probe.ts',
  },
  libSqlAllowed: {
    code: "import { DataSource } from 'typeorm';\nexport const q = (d: DataSource): Promise<unknown> => d.query('SELECT id FROM machines WHERE serial = $1', ['x']);\n",
    path: 'libs/machines/src/probe.ts',
  },
  style: {
    code: 'export function f(a: number): number {\n  if (a) return 1;\n  {\n    a += 1;\n  }\n  return a;\n}\n',
    path: 'libs/audit/src/probe.ts',
  },
} satisfies Record<string, Snippet>;

type SnippetName = keyof typeof SNIPPETS;

describe('lint boundaries', () => {
  const findings = new Map<SnippetName, Finding[]>();
  let tree: { files: number; ms: number; problems: string[] };

  beforeAll(() => {
    const names = Object.keys(SNIPPETS) as SnippetName[];
    const result = runEslint(
      names.map((n) => SNIPPETS[n]),
      true,
    );
    names.forEach((name, i) => findings.set(name, result.snippets[i] ?? []));
    if (result.tree === null) {
      throw new Error('the runner did not lint the tree');
    }
    tree = result.tree;
  }, 300_000);

  function lint(name: SnippetName): Finding[] {
    const found = findings.get(name);
    if (found === undefined) {
      throw new Error(`snippet ${name} was not linted`);
    }
    return found;
  }

  function restrictedImports(found: Finding[]): Finding[] {
    return found.filter((f) => f.ruleId === 'no-restricted-imports');
  }

  it('refuses a NestJS import in libs/tpm2, saying why', () => {
    const found = restrictedImports(lint('tpm2Nest'));
    expect(found).toHaveLength(1);
    expect(found[0]?.severity).toBe(2);
    expect(found[0]?.message).toMatch(/NestJS/);
    expect(found[0]?.message).toContain("'@nestjs/common'");
  });

  it('refuses NestJS in tpm2 subfolders and for any @nestjs package', () => {
    const found = restrictedImports(lint('tpm2NestCore'));
    expect(found).toHaveLength(1);
    expect(found[0]?.message).toMatch(/NestJS/);
  });

  it.each([
    ['tpm2Config', /no other rackseal library/],
    ['tpm2Typeorm', /no I\/O/],
    ['tpm2Redis', /no I\/O/],
  ] as const)('refuses other layering violations in libs/tpm2: %s', (name, message) => {
    const found = restrictedImports(lint(name));
    expect(found).toHaveLength(1);
    expect(found[0]?.severity).toBe(2);
    expect(found[0]?.message).toMatch(message);
  });

  it('lets libs/tpm2 import node built-ins and itself', () => {
    expect(lint('tpm2Allowed')).toEqual([]);
  });

  it.each(['auditNest', 'controlPlaneNest'] as const)('allows the same NestJS import elsewhere (%s)', (name) => {
    expect(lint(name)).toEqual([]);
  });

  it.each(['agentCli', 'agentCliFromSubfolder', 'agentCliByBaseUrl'] as const)('refuses an import from apps/cli in apps/agent (%s), naming the library to use', (name) => {
    const found = restrictedImports(lint(name));
    expect(found).toHaveLength(1);
    expect(found[0]?.severity).toBe(2);
    expect(found[0]?.message).toMatch(/apps\/agent imports nothing from apps\/cli: shared command-line code lives in @rackseal\/command-line/);
  });

  it.each([
    ['agentNest', /apps\/agent loads no server framework/],
    ['agentTypeorm', /apps\/agent loads no server framework/],
    ['commandLineTpm2', /libs\/command-line depends on no other rackseal library/],
    ['commandLineNest', /libs\/command-line loads no server framework/],
  ] as const)('keeps what the agent loads at boot light: %s is refused', (name, message) => {
    const found = restrictedImports(lint(name));
    expect(found).toHaveLength(1);
    expect(found[0]?.message).toMatch(message);
  });

  it.each([
    ['nodeApiContractsNest', /libs\/node-api-contracts loads no server framework, validator or database client: the agent imports it at boot/, "'@nestjs/common'"],
    ['nodeApiContractsValidator', /libs\/node-api-contracts loads no server framework, validator or database client/, "'class-validator'"],
    ['nodeApiContractsTypeorm', /libs\/node-api-contracts loads no server framework, validator or database client/, "'typeorm'"],
    ['nodeApiContractsTpm2', /libs\/node-api-contracts depends on no other rackseal library/, "'@rackseal/tpm2'"],
    ['apiContractsNest', /libs\/api-contracts loads no server framework, validator or database client/, "'@nestjs/common'"],
  ] as const)('keeps the API contracts plain TypeScript: %s is refused, naming the import', (name, message, imported) => {
    const found = restrictedImports(lint(name));
    expect(found).toHaveLength(1);
    expect(found[0]?.severity).toBe(2);
    expect(found[0]?.message).toMatch(message);
    expect(found[0]?.message).toContain(imported);
  });

  it.each([
    ['envelopeNest', /libs\/envelope loads no server framework or database client/, "'@nestjs/common'"],
    ['envelopeAudit', /libs\/envelope depends on no rackseal library but @rackseal\/config/, "'@rackseal/audit'"],
  ] as const)('keeps libs/envelope pure crypto: %s is refused, naming the import', (name, message, imported) => {
    const found = restrictedImports(lint(name));
    expect(found).toHaveLength(1);
    expect(found[0]?.severity).toBe(2);
    expect(found[0]?.message).toMatch(message);
    expect(found[0]?.message).toContain(imported);
  });

  it('lets libs/envelope import node built-ins and @rackseal/config', () => {
    expect(lint('envelopeAllowed')).toEqual([]);
  });

  it.each([
    ['nodeIdentityNest', /libs\/node-identity loads no server framework, validator or database client: the agent imports it at boot/, "'@nestjs/common'"],
    ['nodeIdentityConfigIndex', /libs\/node-identity depends on no rackseal library but @rackseal\/config\/secret-bytes \(not the @rackseal\/config index, which loads NestJS\)/, "'@rackseal/config'"],
    ['nodeIdentityTpm2', /libs\/node-identity depends on no rackseal library but @rackseal\/config\/secret-bytes/, "'@rackseal/tpm2'"],
  ] as const)('keeps libs/node-identity light for the agent: %s is refused, naming the import', (name, message, imported) => {
    const found = restrictedImports(lint(name));
    expect(found).toHaveLength(1);
    expect(found[0]?.severity).toBe(2);
    expect(found[0]?.message).toMatch(message);
    expect(found[0]?.message).toContain(imported);
  });

  it('lets libs/node-identity import node built-ins and the SecretBytes file, and the agent import it', () => {
    expect(lint('nodeIdentityAllowed')).toEqual([]);
    expect(lint('agentNodeIdentity')).toEqual([]);
  });

  it.each([
    ['pcrPolicyNest', /libs\/pcr-policy loads no server framework, validator or database client/, "'@nestjs/common'"],
    ['pcrPolicyTypeorm', /libs\/pcr-policy loads no server framework, validator or database client/, "'typeorm'"],
    ['pcrPolicyMachines', /libs\/pcr-policy depends on no rackseal library but @rackseal\/tpm2 and @rackseal\/ek-trust/, "'@rackseal/machines'"],
  ] as const)('keeps libs/pcr-policy pure: %s is refused, naming the import', (name, message, imported) => {
    const found = restrictedImports(lint(name));
    expect(found).toHaveLength(1);
    expect(found[0]?.severity).toBe(2);
    expect(found[0]?.message).toMatch(message);
    expect(found[0]?.message).toContain(imported);
  });

  it('lets libs/pcr-policy import node built-ins, @rackseal/tpm2 and @rackseal/ek-trust', () => {
    expect(lint('pcrPolicyAllowed')).toEqual([]);
  });

  it.each([
    ['wrappingNest', /libs\/wrapping loads no server framework, validator or database client/, "'@nestjs/common'"],
    ['wrappingSecrets', /libs\/wrapping depends on no rackseal library but @rackseal\/tpm2 and @rackseal\/pcr-policy/, "'@rackseal/secrets'"],
  ] as const)('keeps libs/wrapping pure: %s is refused, naming the import', (name, message, imported) => {
    const found = restrictedImports(lint(name));
    expect(found).toHaveLength(1);
    expect(found[0]?.severity).toBe(2);
    expect(found[0]?.message).toMatch(message);
    expect(found[0]?.message).toContain(imported);
  });

  it('lets libs/wrapping import node built-ins, @rackseal/tpm2 and @rackseal/pcr-policy, and the agent import it', () => {
    expect(lint('wrappingAllowed')).toEqual([]);
    expect(lint('agentWrapping')).toEqual([]);
  });

  it('keeps libs/attestation off the vendor CA store (injected) and lets it use the machines and audit owners', () => {
    const found = restrictedImports(lint('attestationVendorCas'));
    expect(found).toHaveLength(1);
    expect(found[0]?.message).toMatch(/libs\/attestation gets the vendor CA store injected/);
    expect(found[0]?.message).toContain("'@rackseal/vendor-cas'");
    expect(lint('attestationAllowed')).toEqual([]);
  });

  it('lets the agent import the node API contract', () => {
    expect(lint('agentNodeApiContracts')).toEqual([]);
  });

  it.each(['agentAllowed', 'cliCommandLine'] as const)('lets the agent and the CLI use the shared libraries (%s)', (name) => {
    expect(lint(name)).toEqual([]);
  });

  it('refuses SQL text and query calls in apps/control-plane and apps/worker, naming the owner to call', () => {
    const inController = lint('controlPlaneSql').filter((f) => f.ruleId === 'no-restricted-syntax');
    expect(inController.map((f) => f.message).sort()).toEqual([
      'No SQL in apps/control-plane or apps/worker: call the repository of the library that owns the table.',
      'No database calls in apps/control-plane or apps/worker: call the repository of the library that owns the table.',
    ]);
    expect(inController.every((f) => f.severity === 2)).toBe(true);
    // A template over two lines, in a job handler
    const inWorker = lint('workerSqlTemplate').filter((f) => f.ruleId === 'no-restricted-syntax');
    expect(inWorker).toHaveLength(1);
    expect(inWorker[0]?.message).toMatch(/^No SQL in apps\/control-plane or apps\/worker/);
  });

  it.each([
    ['controlPlaneDataSource', ["'DataSource' import from 'typeorm' is restricted"]],
    ['workerRepository', ["'InjectRepository' import from '@nestjs/typeorm' is restricted", "'Repository' import from 'typeorm' is restricted"]],
  ] as const)('refuses a TypeORM DataSource/Repository injected in a server app (%s)', (name, starts) => {
    const found = restrictedImports(lint(name));
    expect(found.map((f) => f.message.split(' from ')[0] + ' from ' + f.message.split(' from ')[1]!.split(' ')[0] + ' is restricted')).toEqual(starts);
    for (const f of found) {
      expect(f.severity).toBe(2);
      expect(f.message).toMatch(/inject the owning library's repository/);
    }
  });

  it('lets the apps use repositories, TypeORM operators and English, and lets libraries hold their SQL', () => {
    expect(lint('controlPlaneNoSql')).toEqual([]);
    expect(lint('libSqlAllowed')).toEqual([]);
  });

  it('enforces curly braces and forbids lone blocks', () => {
    expect(
      lint('style')
        .map((f) => f.ruleId)
        .sort(),
    ).toEqual(['curly', 'no-lone-blocks']);
  });

  it('reports no problem on the repository as it is (`npx eslint .`)', () => {
    expect(tree.problems).toEqual([]);
    expect(tree.files).toBeGreaterThan(20);
  });
});
