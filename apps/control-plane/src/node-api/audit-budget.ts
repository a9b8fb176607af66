/**
 * How many audit records of one kind a process writes per window: the rest are counted, and the
 * next record written carries the count (`suppressed`). A refused node request costs its sender
 * nothing (an unknown credential ID is any 32 hex digits; a captured request can be replayed at
 * will), while each audit record is a permanent row of the transparency log: without a bound an
 * attacker could grow the log and the sequencer's backlog at line rate. A budget per kind, not per
 * credential, since a flood of random credential IDs would never meet a per-credential limit.
 */
export class AuditBudget {
  readonly #windows = new Map<string, { start: number; used: number; suppressed: number }>();

  constructor(
    private readonly perWindow = 20,
    private readonly windowMs = 60_000,
  ) {}

  /** `{ suppressed }` (refusals of this kind not audited since the last record) to write a record now; undefined to count it only. */
  take(kind: string, nowMs: number): { readonly suppressed: number } | undefined {
    let window = this.#windows.get(kind);
    if (window === undefined || nowMs - window.start >= this.windowMs || nowMs < window.start) {
      window = { start: nowMs, used: 0, suppressed: window?.suppressed ?? 0 };
      this.#windows.set(kind, window);
    }
    if (window.used >= this.perWindow) {
      window.suppressed += 1;
      return undefined;
    }
    window.used += 1;
    const suppressed = window.suppressed;
    window.suppressed = 0;
    return { suppressed };
  }
}
