/**
 * The swtpm fixture for jest: `useSwtpms(n)` starts n software TPMs with EK certificates from a CA of
 * the test's own in beforeAll and stops them in afterAll. The machines themselves (startSwtpms,
 * SwtpmMachine, LocalCa) live in demo/support/swtpm.ts, which `npm run demo` runs on too; re-exported
 * here so the suites' imports stay (docs/decisions.md, "The demo").
 */
import { LocalCa } from '../../demo/support/local-ca';
import { startSwtpms, stopSwtpms, type SwtpmMachine, type SwtpmOptions } from '../../demo/support/swtpm';

export * from '../../demo/support/swtpm';

export interface SwtpmFixture {
  /** The CA passed in, or the one useSwtpms made. Available from beforeAll on. */
  readonly ca: LocalCa;
  readonly machines: readonly SwtpmMachine[];
  /** machines[i], throwing instead of returning undefined. */
  at(i: number): SwtpmMachine;
}

export interface UseSwtpmsOptions extends Omit<SwtpmOptions, 'ca'> {
  /**
   * Called in useSwtpms' beforeAll, so a CA made in your own beforeAll must be registered before
   * calling useSwtpms. Default: a fresh LocalCa owned (and removed) by the fixture.
   */
  ca?: () => LocalCa;
  /** beforeAll/afterAll hook timeout; default 120 s. */
  hookTimeoutMs?: number;
}

interface JestHooks {
  beforeAll(fn: () => Promise<void>, timeout?: number): void;
  afterAll(fn: () => Promise<void>, timeout?: number): void;
}

/**
 * Register beforeAll/afterAll that start `count` TPMs and stop them afterwards (afterAll runs even when
 * tests or beforeAll failed). Call at describe level.
 */
export function useSwtpms(count: number, opts: UseSwtpmsOptions = {}): SwtpmFixture {
  // Jest's hooks are taken from globalThis, not imported: this file is also compiled by
  // tsconfig.build.json (types: node only) and may be loaded outside jest, where @jest/globals throws.
  const hooks = globalThis as unknown as Partial<JestHooks>;
  if (typeof hooks.beforeAll !== 'function' || typeof hooks.afterAll !== 'function') {
    throw new Error('useSwtpms must be called inside a jest test file; use startSwtpms elsewhere');
  }
  const timeout = opts.hookTimeoutMs ?? 120_000;
  const { ca: caFactory, hookTimeoutMs: _ignored, ...swtpmOpts } = opts;
  let ca: LocalCa | undefined;
  let ownedCa: LocalCa | undefined;
  let machines: SwtpmMachine[] = [];

  hooks.beforeAll(async () => {
    if (caFactory !== undefined) {
      ca = caFactory();
    } else {
      ownedCa = await LocalCa.create();
      ca = ownedCa;
    }
    machines = await startSwtpms(count, { ...swtpmOpts, ca });
  }, timeout);

  hooks.afterAll(async () => {
    try {
      await stopSwtpms(machines);
    } finally {
      await ownedCa?.remove();
    }
  }, timeout);

  return {
    get ca(): LocalCa {
      if (ca === undefined) {
        throw new Error('useSwtpms: CA not created yet (use it inside tests or later hooks)');
      }
      return ca;
    },
    get machines(): readonly SwtpmMachine[] {
      return machines;
    },
    at(i: number): SwtpmMachine {
      const m = machines[i];
      if (m === undefined) {
        throw new Error(`useSwtpms: no machine #${i} (have ${machines.length})`);
      }
      return m;
    },
  };
}
