import { AuditBudget } from './audit-budget';

describe('AuditBudget', () => {
  it('allows perWindow records per kind and window, counts the rest and reports them on the next record', () => {
    const budget = new AuditBudget(2, 1000);
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
    const budget = new AuditBudget(1, 1000);
    expect(budget.take('x', 5000)).toEqual({ suppressed: 0 });
    expect(budget.take('x', 5001)).toBeUndefined();
    expect(budget.take('x', 100)).toEqual({ suppressed: 1 });
  });
});
