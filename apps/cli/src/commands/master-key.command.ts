import type { Command } from 'commander';
import { CliError } from '@rackseal/command-line';
import { withDatabase } from '../database';
import { operatorName } from '../operator-name';

/** Rows per transaction unless --batch-size says otherwise. */
const DEFAULT_BATCH = 100;

/**
 * `rackseal master-key init|rotate` (docs/decisions.md, "Master-key providers and rotation"), read
 * from the same variables as the processes (MASTER_KEY_PROVIDER, RACKSEAL_MASTER_KEY, PKCS11_*, and
 * the *_PREVIOUS keys of a rotation): never a key on the command line.
 *   - `init` generates the pkcs11 master key PKCS11_KEY_LABEL on the token, once.
 *   - `rotate` goes straight to PostgreSQL (like `token create`): re-wraps every sealed row to the
 *     current key, in batches, resumable; exit 0 when every row is under it, 1 when some are not.
 */
export function registerMasterKey(program: Command): void {
  const masterKey = program.command('master-key').description('the master key of secrets at rest: create the pkcs11 key, rotate every sealed row to the current key');

  masterKey
    .command('init')
    .description('generate the master key PKCS11_KEY_LABEL on the PKCS#11 token (MASTER_KEY_PROVIDER=pkcs11), non-extractable; refused when it exists')
    .action(async () => {
      const [config, { Pkcs11MasterKey, Pkcs11Token, MasterKeyUnavailableError }] = await Promise.all([masterKeyConfig('init'), import('@rackseal/master-keys')]);
      if (config.provider !== 'pkcs11' || config.pkcs11 === null) {
        throw CliError.usage('master-key init: only a pkcs11 master key is created here (MASTER_KEY_PROVIDER=pkcs11); an env key is `openssl rand -hex 32`');
      }
      try {
        const token = Pkcs11Token.open(config.pkcs11);
        try {
          const key = Pkcs11MasterKey.create(token, config.pkcs11.keyLabel);
          process.stdout.write(`created ${key.description} on token "${config.pkcs11.tokenLabel}", KEK ID ${key.kekId.toString('hex')}\n`);
        } finally {
          token.close();
        }
      } catch (error) {
        throw error instanceof MasterKeyUnavailableError ? CliError.invalid(`master-key init: ${error.message}`) : error;
      }
    });

  masterKey
    .command('rotate')
    .description(
      're-wrap every sealed row to the current master key (straight in PostgreSQL, DATABASE_URL), opening the rest with RACKSEAL_MASTER_KEY_PREVIOUS / PKCS11_KEY_LABEL_PREVIOUS; resumable, audited',
    )
    .option('--batch-size <n>', `rows per transaction (1-10000, default ${DEFAULT_BATCH})`)
    .action(async (options: { batchSize?: string }) => {
      const batchSize = options.batchSize === undefined ? DEFAULT_BATCH : Number(options.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10000 || !/^\d+$/.test(options.batchSize ?? '1')) {
        throw CliError.usage('master-key rotate: --batch-size must be an integer from 1 to 10000');
      }
      const [config, masterKeys, { AuditLog }, platform] = await Promise.all([
        masterKeyConfig('rotate'),
        import('@rackseal/master-keys'),
        import('@rackseal/audit'),
        import('@rackseal/platform'),
      ]);
      let opened;
      try {
        opened = masterKeys.openMasterKeys(config);
      } catch (error) {
        throw error instanceof masterKeys.MasterKeyUnavailableError ? CliError.invalid(`master-key rotate: ${error.message}`) : error;
      }
      try {
        const keys = opened.keys;
        process.stderr.write(
          `rotating to ${keys.current.description} (KEK ID ${keys.current.kekId.toString('hex')}); opening with ${[keys.current, ...keys.previous].map((k) => `${k.description} ${k.kekId.toString('hex')}`).join(', ')}\n`,
        );
        const report = await withDatabase({ schema: 'migrate' }, (dataSource) =>
          masterKeys
            .rotateMasterKey(dataSource, new AuditLog(dataSource, new platform.SystemClock()), masterKeys.SEALED_COLUMNS, keys, {
              batchSize,
              actor: `cli:${operatorName()}`,
              onBatch: (p) => {
                process.stderr.write(`${p.column}: ${p.rewrapped} of ${p.pendingAtStart} re-wrapped\n`);
              },
            })
            .catch((error: unknown) => {
              // The token failing mid-way is the key's problem, not PostgreSQL's (withDatabase would say PostgreSQL).
              throw error instanceof masterKeys.MasterKeyUnavailableError ? CliError.invalid(`master-key rotate: ${error.message}`) : error;
            }),
        );
        for (const column of report.columns) {
          process.stdout.write(`${column.column}: ${column.rewrapped} re-wrapped, ${column.remaining} not under the current key\n`);
          for (const refused of column.refused.slice(0, 20)) {
            process.stdout.write(`  ${refused.key}: ${refused.reason}\n`);
          }
        }
        if (!report.done) {
          throw CliError.invalid('master-key rotate: some rows are not under the current key (above); keep the previous keys until a run reports done');
        }
        process.stdout.write(`done: every sealed row is under ${report.to.description} (KEK ID ${report.to.kekId}); the previous keys may be removed\n`);
      } finally {
        opened.close();
      }
    });
}

/** The master-key variables only (plus RACKSEAL_ENV): a bad one is exit 2 naming it, its value never shown when secret. */
async function masterKeyConfig(action: string) {
  const { ConfigError, loadConfigSections } = await import('@rackseal/config');
  try {
    return loadConfigSections(process.env, ['masterKey']).masterKey;
  } catch (error) {
    if (error instanceof ConfigError) {
      throw CliError.usage(`master-key ${action}: master-key settings: ${error.problems.map((p) => `${p.variable}: ${p.reason}`).join('; ')}`);
    }
    throw error;
  }
}
