import { runInThisContext } from 'node:vm';

const cleanups = new Set<() => void>();
let installed = false;

/**
 * Runs `cleanup` synchronously when the test worker process exits, however it exits, so no child
 * (swtpm, a control plane) outlives the run. Returns a function that unregisters it.
 *
 * Inside jest the global `process` is a sandbox copy whose 'exit' event never fires;
 * vm.runInThisContext evaluates in Node's main context and yields the real process object
 * (outside jest it is the same object).
 */
export function onWorkerExit(cleanup: () => void): () => void {
  if (!installed) {
    installed = true;
    const realProcess = runInThisContext('process') as NodeJS.Process;
    realProcess.once('exit', () => cleanups.forEach((fn) => fn()));
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}
