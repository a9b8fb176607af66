/**
 * Polls `probe` until `done` holds or `timeoutMs` passes, and returns the last value either way, so
 * the caller's assertion on it explains a timeout. For state that changes in another process
 * (a job finishing, a dependency noticed down); never a timed assertion.
 */
export async function pollUntil<T>(
  probe: () => Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 30000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await probe();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, intervalMs));
    value = await probe();
  }
  return value;
}
