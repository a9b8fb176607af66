/** How many audit records of one kind a process writes per window, in total and per source. */
export interface AuditBudgetLimits {
  /** Records of one kind per window, all sources together. */
  readonly perWindow: number;
  readonly windowMs: number;
  /** Records of one kind per window from one source (e.g. a client address); no per-source bound when absent. */
  readonly perSource?: number;
}

/**
 * Sources tracked per kind and window. Beyond this many distinct sources in one window (an IPv6
 * flood) the newcomers share one bucket: the map stays bounded and the total bound still holds.
 */
const MAX_SOURCES = 4096;
const OTHER_SOURCES = '\u0000other';

interface Window {
  start: number;
  used: number;
  suppressed: number;
  readonly bySource: Map<string, number>;
}

/**
 * How many audit records of one kind a process writes per window: the rest are counted, and the
 * next record written carries the count (`suppressed`). A refusal that costs its sender nothing (an
 * unknown credential ID is any 32 hex digits; an unknown EK is any key; a captured request can be
 * replayed at will) must not cost the log a permanent row each: the transparency log is
 * append-only, so without a bound an attacker could grow it and the sequencer's backlog at line
 * rate. A budget per kind, not per credential or EK, since a flood of random identifiers would never
 * meet a per-identifier limit; optionally per source too, so that one sender cannot use up the
 * budget that would have recorded another's refusals. Per process: N replicas write at most N times
 * the bound.
 */
export class AuditBudget {
  readonly #windows = new Map<string, Window>();
  readonly #limits: AuditBudgetLimits;

  constructor(
    limits: Partial<AuditBudgetLimits> = {},
    /** Told of each refusal left out (a metric). */
    private readonly onSuppressed: (kind: string) => void = () => undefined,
  ) {
    this.#limits = { perWindow: 20, windowMs: 60_000, ...limits };
  }

  /** `{ suppressed }` (refusals of this kind not audited since the last record) to write a record now; undefined to count it only. */
  take(kind: string, nowMs: number, source?: string): { readonly suppressed: number } | undefined {
    let window = this.#windows.get(kind);
    if (window === undefined || nowMs - window.start >= this.#limits.windowMs || nowMs < window.start) {
      window = { start: nowMs, used: 0, suppressed: window?.suppressed ?? 0, bySource: new Map() };
      this.#windows.set(kind, window);
    }
    const bucket = source === undefined ? undefined : window.bySource.has(source) || window.bySource.size < MAX_SOURCES ? source : OTHER_SOURCES;
    const fromSource = bucket === undefined ? 0 : (window.bySource.get(bucket) ?? 0);
    if (window.used >= this.#limits.perWindow || (bucket !== undefined && this.#limits.perSource !== undefined && fromSource >= this.#limits.perSource)) {
      window.suppressed += 1;
      this.onSuppressed(kind);
      return undefined;
    }
    window.used += 1;
    if (bucket !== undefined) {
      window.bySource.set(bucket, fromSource + 1);
    }
    const suppressed = window.suppressed;
    window.suppressed = 0;
    return { suppressed };
  }
}
