/**
 * `npm run demo` (after prepare-env and the build): rackseal end to end on this machine's PostgreSQL
 * and Redis, with real processes — two control-plane replicas, two workers, three swtpm machines
 * running the built `rackseal-agent`, the operator's `rackseal` CLI, cryptsetup on LUKS2 image
 * files. The story is in fleet-demo.ts. Exit 0 only when every step held and everything the demo
 * started is gone again; 1 otherwise; 130 after Ctrl-C (cleaned up all the same).
 *
 * DATABASE_URL names the PostgreSQL server (the demo creates a database of its own there and drops
 * it), REDIS_URL the Redis server (a queue prefix of its own, cleared at the end).
 */
import { CLEANUP_STEP, FleetDemo, STEP_TITLES } from './fleet-demo';
import { Screen } from './screen';
import { Stack } from './stack';
import { check, CheckFailed, Steps } from './steps';

const DEFAULT_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/postgres';
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

async function main(): Promise<void> {
  const screen = new Screen();
  const steps = new Steps(STEP_TITLES, (line) => screen.log(line));
  const stack = await Stack.create();
  const services = { databaseUrl: process.env.DATABASE_URL || DEFAULT_DATABASE_URL, redisUrl: process.env.REDIS_URL || DEFAULT_REDIS_URL };
  screen.log(`rackseal demo: PostgreSQL ${new URL(services.databaseUrl).host}, Redis ${new URL(services.redisUrl).host}`);

  let finishing: Promise<never> | undefined;
  /** Clean-up, summary, exit: once, whoever gets here first (the story's end, a failure, a signal). */
  const finish = (interruptedBy?: NodeJS.Signals): Promise<never> => {
    finishing ??= (async () => {
      screen.freeze();
      if (interruptedBy !== undefined) {
        steps.interrupt();
        screen.log(`\n${interruptedBy}: stopping and cleaning up`);
      }
      await steps
        .run(CLEANUP_STEP, async () => {
          const problems = await stack.cleanUp();
          check(problems.length === 0, problems.join('; '));
          return `every process the demo started stopped, swtpm TPMs gone, ${stack.dir} removed, database ${stack.database?.name ?? '(none)'} dropped, no Redis key left under ${stack.queuePrefix?.prefix ?? '(none)'}`;
        })
        .catch(() => undefined);
      for (const line of steps.summary()) {
        screen.log(line);
      }
      const passed = steps.allPassed && interruptedBy === undefined;
      screen.log(passed ? `\ndemo: all ${STEP_TITLES.length} steps ✓` : interruptedBy !== undefined ? '\ndemo: interrupted' : '\ndemo: FAILED');
      process.exit(interruptedBy === 'SIGINT' ? 130 : interruptedBy === 'SIGTERM' ? 143 : passed ? 0 : 1);
    })();
    return finishing;
  };
  process.once('SIGINT', () => void finish('SIGINT'));
  process.once('SIGTERM', () => void finish('SIGTERM'));

  try {
    await new FleetDemo(services, stack, screen, steps).run();
  } catch (error) {
    if (finishing === undefined && !(error instanceof CheckFailed)) {
      // A step's check names what failed; anything else is a bug or a dead dependency: say where.
      screen.log(`  ${(error as Error).stack ?? String(error)}`);
    }
  }
  await finish();
}

void main().catch((error: unknown) => {
  process.stderr.write(`demo: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
