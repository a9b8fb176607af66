/**
 * Jest's lifecycle hooks, taken from globalThis rather than imported: test/support is also compiled
 * by tsconfig.build.json (types: node only) and may be loaded outside jest, where @jest/globals
 * throws. `use…` fixtures call this at describe level.
 */
export interface JestHooks {
  beforeAll(fn: () => Promise<unknown>, timeout?: number): void;
  afterAll(fn: () => Promise<unknown>, timeout?: number): void;
  afterEach(fn: () => Promise<unknown>, timeout?: number): void;
}

export function jestHooks(fixture: string): JestHooks {
  const hooks = globalThis as unknown as Partial<JestHooks>;
  if (typeof hooks.beforeAll !== 'function' || typeof hooks.afterAll !== 'function' || typeof hooks.afterEach !== 'function') {
    throw new Error(`${fixture} must be called inside a jest test file`);
  }
  return hooks as JestHooks;
}
