/**
 * Everything the demo starts or creates, and the one clean-up that removes it — after the last step,
 * after a failed step and on Ctrl-C alike: the agents, the control planes and workers, the swtpm
 * TPMs and their vendor CA, the temporary directory, the demo's own database and queue prefix. The
 * clean-up then proves it: no child alive, the database gone, no key under the prefix, no directory.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { endRunsInFlight } from './support/cli-runner';
import type { LocalCa } from './support/local-ca';
import type { ScratchQueuePrefix } from './support/queue-prefix';
import type { ScratchDatabase } from './support/scratch-database';

/** A child the demo started: stopped gracefully, killed when it lingers. */
export interface Stoppable {
  readonly label: string;
  stop(): Promise<unknown>;
  readonly running: boolean;
}

export class Stack {
  database: ScratchDatabase | undefined;
  queuePrefix: ScratchQueuePrefix | undefined;
  vendorCa: LocalCa | undefined;
  /** Stopped in reverse order of registration: agents before the control planes they talk to, TPMs last. */
  private readonly children: Stoppable[] = [];
  private cleaning: Promise<string[]> | undefined;
  /** Stops of children added once the clean-up had begun, awaited before the directory goes. */
  private readonly lateStops: Promise<unknown>[] = [];

  private constructor(readonly dir: string) {}

  static async create(): Promise<Stack> {
    return new Stack(await mkdtemp(join(tmpdir(), 'rackseal-demo-')));
  }

  /** A child to stop at clean-up; one started while the clean-up runs (Ctrl-C mid-step) is stopped at once. */
  add<T extends Stoppable>(child: T): T {
    this.children.push(child);
    if (this.cleaning !== undefined) {
      this.lateStops.push(child.stop().catch(() => undefined));
    }
    return child;
  }

  /** The demo's database, dropped at clean-up (at once when the clean-up already ran). */
  async adoptDatabase(database: ScratchDatabase): Promise<ScratchDatabase> {
    this.database = database;
    if (this.cleaning !== undefined) {
      await database.drop();
    }
    return database;
  }

  /** The demo's queue prefix, cleared at clean-up. */
  adoptQueuePrefix(prefix: ScratchQueuePrefix): ScratchQueuePrefix {
    this.queuePrefix = prefix;
    return prefix;
  }

  /** Removes everything; resolves with what could not be removed (empty: all clean). Runs once. */
  cleanUp(): Promise<string[]> {
    this.cleaning ??= this.removeAll();
    return this.cleaning;
  }

  private async removeAll(): Promise<string[]> {
    const problems: string[] = [];
    const attempt = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (error) {
        problems.push(`${what}: ${(error as Error).message}`);
      }
    };
    for (const child of [...this.children].reverse()) {
      await attempt(`stopping ${child.label}`, () => child.stop());
    }
    // Commands a step had running (`rackseal-agent enroll`, the CLI) write into the directory too.
    await attempt('ending the commands in flight', () => endRunsInFlight());
    for (const child of this.children.filter((c) => c.running)) {
      problems.push(`${child.label} is still running`);
    }
    await attempt('removing the vendor CA', async () => this.vendorCa?.remove());
    // A child a step started after Ctrl-C is stopped before the directory goes (the commands in
    // flight were ended above and no new one starts); rm itself retries ENOTEMPTY.
    await Promise.all(this.lateStops);
    await attempt(`removing ${this.dir}`, () => rm(this.dir, { recursive: true, force: true, maxRetries: 5, retryDelay: 100 }));
    if (existsSync(this.dir)) {
      problems.push(`${this.dir} is still there`);
    }
    const database = this.database;
    if (database !== undefined) {
      await attempt(`dropping database ${database.name}`, () => database.drop());
      await attempt(`checking database ${database.name}`, async () => {
        if (await database.exists()) {
          problems.push(`database ${database.name} still exists`);
        }
      });
    }
    const prefix = this.queuePrefix;
    if (prefix !== undefined) {
      await attempt(`clearing queue prefix ${prefix.prefix}`, () => prefix.clear());
      await attempt(`checking queue prefix ${prefix.prefix}`, async () => {
        const left = await prefix.count();
        if (left > 0) {
          problems.push(`${left} Redis key(s) left under ${prefix.prefix}:`);
        }
      });
    }
    return problems;
  }
}
