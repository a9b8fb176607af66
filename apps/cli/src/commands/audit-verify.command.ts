import type { Command } from 'commander';
import type { DataSource } from 'typeorm';
import { EXIT } from '../exit-codes';

/**
 * `rackseal audit verify`: walks the hash chain straight from PostgreSQL (DATABASE_URL), for an
 * auditor who trusts neither the API nor the control plane. Exit 0 intact, 1 tampered, 2 unusable.
 */
export function registerAuditVerify(program: Command): void {
  const audit = program.command('audit').description('audit log tools');
  audit
    .command('verify')
    .description('verify the audit hash chain directly in PostgreSQL (uses DATABASE_URL)')
    .option('--json', 'machine-readable output')
    .action(async (options: { json?: boolean }) => {
      // Loaded here, not at the top: Nest, TypeORM and pg take ~0.4 s to load, which every offline
      // TPM command of this CLI would otherwise pay.
      await import('reflect-metadata');
      const [{ ConfigError, loadConfig }, { verifyAuditChain }, { dataSourceOptions }, { DataSource: TypeOrmDataSource }] = await Promise.all([
        import('@rackseal/config'),
        import('@rackseal/audit'),
        import('@rackseal/persistence'),
        import('typeorm'),
      ]);
      let config;
      try {
        config = loadConfig({ ...process.env, RACKSEAL_ENV: process.env.RACKSEAL_ENV ?? 'demo' });
      } catch (error) {
        process.stderr.write(`${error instanceof ConfigError ? error.message : String(error)}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      let dataSource: DataSource;
      try {
        dataSource = await new TypeOrmDataSource(dataSourceOptions(config, 'rackseal-cli')).initialize();
      } catch (error) {
        process.stderr.write(`cannot connect to PostgreSQL: ${(error as Error).message}\n`);
        process.exitCode = EXIT.usage;
        return;
      }
      try {
        const verdict = await verifyAuditChain(dataSource);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(verdict)}\n`);
        } else if (verdict.ok) {
          process.stdout.write(`audit chain intact: ${verdict.records} records, head ${verdict.headHash}\n`);
        }
        if (!verdict.ok) {
          process.stderr.write(`audit chain broken at record ${verdict.problem.seq}: ${verdict.problem.message}\n`);
          process.exitCode = EXIT.invalid;
        }
      } finally {
        await dataSource.destroy();
      }
    });
}
