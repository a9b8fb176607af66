import { MicroBatcher } from './micro-batcher';

describe('MicroBatcher', () => {
  it('runs the callers of one turn together and answers each its own output, in order', async () => {
    const runs: number[][] = [];
    const batcher = new MicroBatcher<number, string>(
      (inputs) => {
        runs.push([...inputs]);
        return Promise.resolve(inputs.map((n) => `#${n}`));
      },
      { maxBatch: 10, maxInFlight: 1 },
    );
    const answers = await Promise.all([1, 2, 3].map((n) => batcher.submit(n)));
    expect(answers).toEqual(['#1', '#2', '#3']);
    expect(runs).toEqual([[1, 2, 3]]);
  });

  it('queues callers while maxInFlight runs are under way, and splits the queue at maxBatch', async () => {
    const runs: number[][] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const batcher = new MicroBatcher<number, number>(
      async (inputs) => {
        runs.push([...inputs]);
        if (runs.length === 1) {
          await gate;
        }
        return inputs.map((n) => n * 10);
      },
      { maxBatch: 2, maxInFlight: 1 },
    );
    const first = batcher.submit(1);
    await new Promise((resolve) => setImmediate(resolve));
    const later = [2, 3, 4, 5, 6].map((n) => batcher.submit(n));
    await new Promise((resolve) => setImmediate(resolve));
    expect(batcher.waiting).toBe(5);
    release();
    expect(await first).toBe(10);
    expect(await Promise.all(later)).toEqual([20, 30, 40, 50, 60]);
    expect(runs).toEqual([[1], [2, 3], [4, 5], [6]]);
  });

  it('rejects every input of a batch whose run throws, and the next batch runs', async () => {
    let fail = true;
    const batcher = new MicroBatcher<number, number>(
      (inputs) => {
        if (fail) {
          fail = false;
          return Promise.reject(new Error('database unreachable'));
        }
        return Promise.resolve(inputs.map((n) => n));
      },
      { maxBatch: 10, maxInFlight: 1 },
    );
    const failed = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(failed.map((r) => (r.status === 'rejected' ? (r.reason as Error).message : 'fulfilled'))).toEqual(['database unreachable', 'database unreachable']);
    expect(await batcher.submit(3)).toBe(3);
  });

  it('rejects a batch whose run answers the wrong number of outputs', async () => {
    const batcher = new MicroBatcher<number, number>(() => Promise.resolve([1]), { maxBatch: 10, maxInFlight: 1 });
    const settled = await Promise.allSettled([batcher.submit(1), batcher.submit(2)]);
    expect(settled.map((r) => r.status)).toEqual(['rejected', 'rejected']);
  });
});
