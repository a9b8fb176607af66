/**
 * The demo's clean-up (demo/stack.ts) against a command a step still had running when Ctrl-C came: a
 * fresh-clone CI run of test/demo.test.ts found the demo's directory back after the demo had removed
 * it and exited — `rackseal-agent enroll`, still running, wrote its state directory after the
 * removal. The clean-up now ends the commands in flight (demo/support/cli-runner endRunsInFlight)
 * before it removes the directory, and refuses new ones. Deterministic here: the command writes
 * into the directory a moment after the clean-up starts.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Stack } from '../demo/stack';
import { runRacksealCliAsync, spawnCli } from '../demo/support/cli-runner';

jest.setTimeout(60_000);

describe('demo clean-up with a command in flight', () => {
  it('ends the command before removing the directory, which stays gone, and refuses new commands', async () => {
    const stack = await Stack.create();
    const late = join(stack.dir, 'agent-state');
    // Node runs -e's code and ignores the CLI entry after it: a command that writes into the
    // demo's directory 1.5 s from now, as the enroll did, and runs for 30 s.
    const writer = `setTimeout(() => require('node:fs').mkdirSync(${JSON.stringify(late)}, { recursive: true }), 1500); setTimeout(() => {}, 30000);`;
    const run = runRacksealCliAsync([], { nodeArgs: ['-e', writer] });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();

    const problems = await stack.cleanUp();

    expect(problems).toEqual([]);
    // The command was killed, not waited for (it would have run 30 s).
    const ended = await run;
    expect(ended.status).toBeNull();
    expect(Date.now() - started).toBeLessThan(10_000);
    // Past the moment the command would have written: nothing came back.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    expect(existsSync(late)).toBe(false);
    expect(existsSync(stack.dir)).toBe(false);
    // A step still in flight cannot start another.
    await expect(runRacksealCliAsync(['--version'])).rejects.toThrow('rackseal not started: the runs in flight were ended (cleaning up)');
    expect(() => spawnCli('rackseal-agent', ['run'])).toThrow('rackseal-agent not started');
  });
});
