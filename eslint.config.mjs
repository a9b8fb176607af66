// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'eslint.config.mjs', 'jest.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
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
