/** Stops containers the global setup may have started (no-op for local services). */
export default async function globalTeardown(): Promise<void> {
  const services = (globalThis as { __racksealServices?: { stop(): Promise<void> } }).__racksealServices;
  await services?.stop();
  await (globalThis as { __racksealSoftHsm?: { remove(): Promise<void> } }).__racksealSoftHsm?.remove();
}
