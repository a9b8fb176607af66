/**
 * Issue 10 item 6: migrations/index.ts lists the migrations by hand (a build never picks up a stray
 * file), so a new migration file that is not added to MIGRATIONS would silently never run — not at
 * boot, not by `rackseal migrate`. This test reads the directory and fails for any such file.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { MIGRATIONS } from '../migrations';

const MIGRATIONS_DIR = join(__dirname, '..', 'migrations');

/** `<13-digit timestamp>-<kebab-name>.ts`, the shape of every migration file. */
const MIGRATION_FILE = /^(\d{13})-[a-z0-9-]+\.ts$/;

type MigrationClass = abstract new (...args: never[]) => unknown;

/**
 * What is wrong between the migration files in `directory` and `listed` (the list that runs them):
 * a file whose migration class is not listed, a file that is not a migration, a list out of
 * timestamp order. Empty when they agree.
 */
function migrationListProblems(directory: string, listed: readonly MigrationClass[]): string[] {
  const problems: string[] = [];
  const files = readdirSync(directory).filter((f) => f !== 'index.ts').sort();
  for (const file of files) {
    const match = MIGRATION_FILE.exec(file);
    if (match === null) {
      problems.push(`${file}: not a migration file name (<13-digit timestamp>-<name>.ts)`);
      continue;
    }
    // eslint-disable-next-line @typescript-eslint/no-require-imports -- each file is loaded by the name read from the directory
    const exported = Object.values(require(join(directory, file)) as Record<string, unknown>).filter((v): v is MigrationClass => typeof v === 'function');
    const migration = exported.find((c) => c.name.endsWith(match[1]!));
    if (migration === undefined) {
      problems.push(`${file}: exports no migration class named …${match[1]}`);
    } else if (!listed.includes(migration)) {
      problems.push(`${file}: ${migration.name} is not in MIGRATIONS (migrations/index.ts), so it never runs`);
    }
  }
  const order = listed.map((c) => c.name.slice(-13));
  if (order.join() !== [...order].sort().join()) {
    problems.push(`MIGRATIONS is not in timestamp order: ${listed.map((c) => c.name).join(', ')}`);
  }
  return problems;
}

describe('the migration list', () => {
  it('runs every migration file in migrations/, oldest first', () => {
    expect(migrationListProblems(MIGRATIONS_DIR, MIGRATIONS)).toEqual([]);
    expect(MIGRATIONS.length).toBe(readdirSync(MIGRATIONS_DIR).filter((f) => MIGRATION_FILE.test(f)).length);
  });

  it('fails for a file left out of the list (sample: the newest one dropped) and for a list out of order', () => {
    const newest = MIGRATIONS[MIGRATIONS.length - 1]!;
    const newestFile = readdirSync(MIGRATIONS_DIR).filter((f) => MIGRATION_FILE.test(f)).sort().at(-1)!;
    expect(migrationListProblems(MIGRATIONS_DIR, MIGRATIONS.slice(0, -1))).toEqual([`${newestFile}: ${newest.name} is not in MIGRATIONS (migrations/index.ts), so it never runs`]);
    expect(migrationListProblems(MIGRATIONS_DIR, [...MIGRATIONS].reverse())).toEqual([`MIGRATIONS is not in timestamp order: ${[...MIGRATIONS].reverse().map((c) => c.name).join(', ')}`]);
  });
});
