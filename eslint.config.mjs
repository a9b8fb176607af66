// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** The import rule of an API contract library: `dir` loads nothing but plain TypeScript (`why`). */
function plainContract(dir, why) {
  return {
    files: [`${dir}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@rackseal/*'], message: `${dir} depends on no other rackseal library.` },
            {
              group: ['@nestjs/*', '@nestjs', 'class-validator', 'class-transformer', 'typeorm', 'bullmq', 'ioredis', 'pg'],
              message: `${dir} loads no server framework, validator or database client: ${why}.`,
            },
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'eslint.config.mjs', 'jest.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // ui/ (the dashboard, issue 16) is TSX and its Vite config an ES module: the same rules.
    files: ['**/*.ts', '**/*.tsx', '**/*.mts'],
    languageOptions: { parserOptions: { project: false } },
    rules: {
      curly: ['error', 'all'],
      'no-lone-blocks': 'error',
      eqeqeq: ['error', 'always'],
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // libs/tpm2 is the TPM 2.0 library: pure TypeScript that must also run in the agent's initramfs.
    files: ['libs/tpm2/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@nestjs/*', '@nestjs'], message: 'libs/tpm2 is framework-free: no NestJS imports.' },
            { group: ['@rackseal/*', '!@rackseal/tpm2'], message: 'libs/tpm2 depends on no other rackseal library.' },
            { group: ['typeorm', 'bullmq', 'ioredis', 'pg'], message: 'libs/tpm2 does no I/O beyond its transport.' },
          ],
        },
      ],
    },
  },
  {
    // The agent runs from an initramfs at boot: it stands alone, apart from the operator CLI and the server.
    files: ['apps/agent/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // Relative (`../../cli/src/…`) or baseUrl (`apps/cli/src/…`) paths into apps/cli.
              regex: '(^|/)apps/cli(/|$)|^(\\.\\./)+cli(/|$)',
              message: 'apps/agent imports nothing from apps/cli: shared command-line code lives in @rackseal/command-line.',
            },
            { group: ['@nestjs/*', '@nestjs', 'typeorm', 'bullmq', 'ioredis', 'pg'], message: 'apps/agent loads no server framework or database client.' },
          ],
        },
      ],
    },
  },
  {
    // Loaded by `rackseal-agent --help` at boot, and by the CLI: node built-ins and commander only.
    files: ['libs/command-line/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@rackseal/*'], message: 'libs/command-line depends on no other rackseal library.' },
            { group: ['@nestjs/*', '@nestjs', 'typeorm', 'bullmq', 'ioredis', 'pg'], message: 'libs/command-line loads no server framework or database client.' },
          ],
        },
      ],
    },
  },
  {
    // Envelope encryption is pure crypto over node:crypto; later issues (secrets, disk keys) reuse it.
    // Of rackseal libraries it takes only @rackseal/config, for SecretBytes.
    files: ['libs/envelope/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@rackseal/*', '!@rackseal/config'], message: 'libs/envelope depends on no rackseal library but @rackseal/config (SecretBytes).' },
            { group: ['@nestjs/*', '@nestjs', 'typeorm', 'bullmq', 'ioredis', 'pg'], message: 'libs/envelope loads no server framework or database client: the caller stores the blob.' },
          ],
        },
      ],
    },
  },
  {
    // Node identity is loaded by the agent at boot and by the control plane: node:crypto and, of
    // rackseal, only the SecretBytes file (the @rackseal/config index loads its NestJS module).
    files: ['libs/node-identity/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^@rackseal/(?!config/secret-bytes$)',
              message: 'libs/node-identity depends on no rackseal library but @rackseal/config/secret-bytes (not the @rackseal/config index, which loads NestJS).',
            },
            {
              group: ['@nestjs/*', '@nestjs', 'class-validator', 'class-transformer', 'typeorm', 'bullmq', 'ioredis', 'pg'],
              message: 'libs/node-identity loads no server framework, validator or database client: the agent imports it at boot.',
            },
          ],
        },
      ],
    },
  },
  {
    // PCR policies are pure evaluation over libs/tpm2's event-log parser: the attestation service and the
    // operator API store and load them. libs/ek-trust only for its printable-text definition.
    files: ['libs/pcr-policy/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@rackseal/*', '!@rackseal/tpm2', '!@rackseal/ek-trust'], message: 'libs/pcr-policy depends on no rackseal library but @rackseal/tpm2 and @rackseal/ek-trust.' },
            { group: ['@nestjs/*', '@nestjs', 'class-validator', 'class-transformer', 'typeorm', 'bullmq', 'ioredis', 'pg'], message: 'libs/pcr-policy loads no server framework, validator or database client: the caller stores the policy.' },
          ],
        },
      ],
    },
  },
  {
    // IMA measurement lists and runtime policies: pure parsing, replay and evaluation over node:crypto and
    // libs/tpm2's reader; the attestation service and the agent call it.
    files: ['libs/ima/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@rackseal/*', '!@rackseal/tpm2'], message: 'libs/ima depends on no rackseal library but @rackseal/tpm2.' },
            { group: ['@nestjs/*', '@nestjs', 'class-validator', 'class-transformer', 'typeorm', 'bullmq', 'ioredis', 'pg'], message: 'libs/ima loads no server framework, validator or database client: the caller stores states and policies.' },
          ],
        },
      ],
    },
  },
  {
    // Wrapping is pure functions over libs/tpm2 and the approval arithmetic of libs/pcr-policy: the
    // control plane wraps with it, the agent (at boot too) parses and unwraps with it.
    files: ['libs/wrapping/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@rackseal/*', '!@rackseal/tpm2', '!@rackseal/pcr-policy'], message: 'libs/wrapping depends on no rackseal library but @rackseal/tpm2 and @rackseal/pcr-policy.' },
            { group: ['@nestjs/*', '@nestjs', 'class-validator', 'class-transformer', 'typeorm', 'bullmq', 'ioredis', 'pg'], message: 'libs/wrapping loads no server framework, validator or database client: the caller stores and sends the envelope.' },
          ],
        },
      ],
    },
  },
  {
    // The attestation service owns its tables and reaches the others through their owners
    // (libs/machines, libs/audit); the vendor CA store comes injected (loadTrustStore), and the
    // operator API's inventory and tokens are none of its business.
    files: ['libs/attestation/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@rackseal/vendor-cas', '@rackseal/inventory', '@rackseal/api-tokens', '@rackseal/jobs', '@rackseal/deliveries'],
              message:
                'libs/attestation gets the vendor CA store injected (loadTrustStore) and uses no inventory, token, job or deliveries library (libs/deliveries implements its AttestedMachineHook).',
            },
          ],
        },
      ],
    },
  },
  {
    // The deliveries build on secrets, attestation and machines, which reach them only through the
    // hooks they declare (SecretVersionHook, AttestedMachineHook, InventoryImportHook): never the other way, no cycle.
    files: ['libs/secrets/**/*.ts', 'libs/machines/**/*.ts', 'libs/inventory/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@rackseal/deliveries'],
              message: 'libs/deliveries depends on this library: declare a hook here and let libs/deliveries implement it.',
            },
          ],
        },
      ],
    },
  },
  // The API contracts are imported by the CLI and the agent (which runs from an initramfs at boot):
  // plain TypeScript, no framework, validator or database client, no other rackseal library.
  plainContract('libs/api-contracts', 'the CLI and the agent import it'),
  plainContract('libs/node-api-contracts', 'the agent imports it at boot'),
  {
    // One data layer (docs/architecture.md §9): the server processes reach tables only through the
    // repository of the library that owns them. No SQL text, no query calls, no TypeORM
    // DataSource/Repository/EntityManager of their own. SQL keywords are matched in capitals (how
    // this code base writes SQL) so English messages pass; `.query(` catches the rest. The second
    // pattern catches the tail of a template split at an interpolation (`UPDATE ${t}` / `SET … WHERE`).
    files: ['apps/control-plane/**/*.ts', 'apps/worker/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'Literal[value=/\\b(SELECT|INSERT|UPDATE|DELETE)\\b[\\s\\S]*\\b(FROM|INTO|SET|WHERE)\\b|\\b(FROM|INTO|SET)\\b[\\s\\S]*\\bWHERE\\b/]',
          message: 'No SQL in apps/control-plane or apps/worker: call the repository of the library that owns the table.',
        },
        {
          selector: 'TemplateElement[value.raw=/\\b(SELECT|INSERT|UPDATE|DELETE)\\b[\\s\\S]*\\b(FROM|INTO|SET|WHERE)\\b|\\b(FROM|INTO|SET)\\b[\\s\\S]*\\bWHERE\\b/]',
          message: 'No SQL in apps/control-plane or apps/worker: call the repository of the library that owns the table.',
        },
        {
          selector: "CallExpression[callee.property.name=/^(query|createQueryBuilder|createQueryRunner|getRepository|transaction)$/]",
          message: 'No database calls in apps/control-plane or apps/worker: call the repository of the library that owns the table.',
        },
      ],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: 'typeorm',
              importNames: ['DataSource', 'Repository', 'EntityManager', 'QueryRunner'],
              message: 'apps/control-plane and apps/worker inject no TypeORM DataSource/Repository/EntityManager: inject the owning library\'s repository.',
            },
            {
              name: '@nestjs/typeorm',
              importNames: ['InjectRepository', 'InjectDataSource', 'InjectEntityManager'],
              message: 'apps/control-plane and apps/worker inject no TypeORM DataSource/Repository/EntityManager: inject the owning library\'s repository.',
            },
          ],
        },
      ],
    },
  },
  {
    // Build scripts and the jest reporter are plain Node.js; without these globals `eslint .` fails on them.
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        URLSearchParams: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        AbortController: 'readonly',
        fetch: 'readonly',
      },
    },
  },
  {
    files: ['**/*.js', '**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
  },
  {
    // CLIs write to stdout/stderr through process streams; tests and scripts may print.
    files: ['test/**/*.ts', 'scripts/**', 'bench/**'],
    rules: { 'no-console': 'off' },
  },
);
