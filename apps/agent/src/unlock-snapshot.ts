/*
 * The entry of the agent's startup snapshot (scripts/build-unlock-snapshot.mjs bundles this file
 * with everything it reaches into one script and runs `node --build-snapshot` on it; the initramfs
 * starts `node --snapshot-blob unlock.blob -- unlock …`: docs/decisions.md "Boot unlock from a
 * startup snapshot"). At build time it evaluates the code an offline unlock runs — the imports
 * below and what they import: the files test/agent-unlock-startup.test.ts lists, main.js aside,
 * which that test checks — so that V8 deserializes them instead of Node resolving, reading and
 * compiling ~90 files at every boot.
 *
 * Only module bodies, warmUnlockPath (unlock-snapshot-warm.ts: the unlock's pure front on made-up
 * inputs) and warmUnlockTpmPath (unlock-snapshot-warm-tpm.ts: its TPM half against a recorded
 * exchange), so that the blob carries those functions' bytecode, run at build time, and what is
 * built then is kept for every boot: none of those on the path reads process.env or process.argv,
 * the clock or a file, opens a handle or makes a key or a random value — they define functions,
 * classes and constants (a module body that did would bake the build machine's value into the blob). Everything per run — the arguments, the
 * config file, the state dir, the TPM — is read when the main function below runs, on the booting
 * machine. test/agent-unlock-startup.test.ts holds which module bodies run at build time;
 * test/deploy-files.test.ts unlocks from the blob through the initramfs hook's wrapper.
 */
import { startupSnapshot } from 'node:v8';
// What main.js imports (it is evaluated at run time: it runs the command line as it loads), the
// command's code, its config defaults and both transports (which one is chosen at run time):
// without these, main.js's import() calls would compile them after deserializing.
import '@rackseal/command-line/run-command-line';
import '@rackseal/command-line/version';
import './commands/tpm.command';
import './commands/agent-config-defaults';
import './commands/unlock.action';
import '@rackseal/tpm2/client/device-transport';
import '@rackseal/tpm2/client/swtpm-transport';
import { warmUnlockPath } from './unlock-snapshot-warm';
import { warmUnlockTpmPath } from './unlock-snapshot-warm-tpm';

/**
 * Runs the agent's command line as main.js does. A process started from a snapshot has no script
 * in its argv (`node --snapshot-blob B -- unlock …` gives [node, 'unlock', …]); the program's name
 * stands where the script's path would be, which nothing reads (runCommandLine takes argv from 2).
 */
function runAgent(): void {
  process.argv.splice(1, 0, 'rackseal-agent');
  void import('./main');
}

if (startupSnapshot.isBuildingSnapshot()) {
  // The pure front of the unlock run once on made-up inputs, and its TPM half against a recorded
  // exchange: their bytecode goes into the blob. The snapshot is taken when the replay has settled.
  warmUnlockPath();
  startupSnapshot.setDeserializeMainFunction(runAgent);
  warmUnlockTpmPath().catch((error: unknown) => {
    // A blob without it still unlocks, compiling the TPM half at boot as before; the warm-up's test fails.
    process.stderr.write(`rackseal: the startup snapshot's TPM warm-up did not replay (${(error as Error).message}); record it again with bench/record-unlock-warm.ts\n`);
  });
} else {
  // Run as a plain script (the bundle without its blob): the arguments already have their script.
  void import('./main');
}
