import { AuditBudget } from './audit-budget';

describe('AuditBudget', () => {
  it('allows perWindow records per kind and window, counts the rest and reports them on the next record', () => {
    const budget = new AuditBudget({ perWindow: 2, windowMs: 1000 });
    expect(budget.take('replayed', 0)).toEqual({ suppressed: 0 });
    expect(budget.take('replayed', 10)).toEqual({ suppressed: 0 });
    expect(budget.take('replayed', 20)).toBeUndefined();
    expect(budget.take('replayed', 30)).toBeUndefined();
    // Another kind has its own budget.
    expect(budget.take('bad-signature', 30)).toEqual({ suppressed: 0 });
    // The next window: the first record says how many were left out.
    expect(budget.take('replayed', 1000)).toEqual({ suppressed: 2 });
    expect(budget.take('replayed', 1001)).toEqual({ suppressed: 0 });
  });

  it('a clock that goes back starts a new window rather than refusing forever', () => {
    const budget = new AuditBudget({ perWindow: 1, windowMs: 1000 });
    expect(budget.take('x', 5000)).toEqual({ suppressed: 0 });
    expect(budget.take('x', 5001)).toBeUndefined();
    expect(budget.take('x', 100)).toEqual({ suppressed: 1 });
  });

  it('perSource: one source cannot use up the budget of the others; the total still holds', () => {
    const left: string[] = [];
    const budget = new AuditBudget({ perWindow: 4, windowMs: 1000, perSource: 2 }, (kind) => left.push(kind));
    expect([1, 2, 3, 4].map((t) => budget.take('unknown-ek', t, '10.0.0.1'))).toEqual([{ suppressed: 0 }, { suppressed: 0 }, undefined, undefined]);
    // Another source is still recorded, and its record carries the count of the first one's left out.
    expect(budget.take('unknown-ek', 5, '10.0.0.2')).toEqual({ suppressed: 2 });
    expect(budget.take('unknown-ek', 6, '10.0.0.3')).toEqual({ suppressed: 0 });
    // The total (4) is reached: a fresh source is left out too.
    expect(budget.take('unknown-ek', 7, '10.0.0.4')).toBeUndefined();
    expect(left).toEqual(['unknown-ek', 'unknown-ek', 'unknown-ek']);
    // A new window for everyone.
    expect(budget.take('unknown-ek', 1001, '10.0.0.1')).toEqual({ suppressed: 1 });
  });

  it('tracks a bounded number of sources: beyond it the newcomers share one bucket', () => {
    const budget = new AuditBudget({ perWindow: 1_000_000, windowMs: 1000, perSource: 1 });
    for (let i = 0; i < 4096; i++) {
      expect(budget.take('k', 0, `s${i}`)).toEqual({ suppressed: 0 });
    }
    expect(budget.take('k', 0, 'newcomer-1')).toEqual({ suppressed: 0 });
    expect(budget.take('k', 0, 'newcomer-2')).toBeUndefined();
  });
});
