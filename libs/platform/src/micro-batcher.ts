/** How a MicroBatcher groups its callers. */
export interface MicroBatcherOptions {
  /** Most inputs one call of `run` takes. */
  readonly maxBatch: number;
  /** Most calls of `run` at once (each holds a database connection, say): callers beyond wait and join the next batch. */
  readonly maxInFlight: number;
}

interface Waiting<I, O> {
  readonly input: I;
  readonly resolve: (output: O) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Group commit for many concurrent callers of one round trip: `submit` queues an input, and the
 * queued inputs go to `run` together, which answers one output per input in the same order. While
 * `maxInFlight` runs are under way, new inputs wait and form the next batch, so under load a batch
 * grows with the queue (one statement for many requests) and when idle an input runs alone, at the
 * next turn of the event loop: no timer, no added wait. A run that throws rejects every input of its
 * batch with that error; so `run` answers per-input refusals as outputs, and throws only for what
 * concerns the whole batch (the database is unreachable).
 */
export class MicroBatcher<I, O> {
  private queue: Waiting<I, O>[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly run: (inputs: readonly I[]) => Promise<readonly O[]>,
    private readonly options: MicroBatcherOptions,
  ) {}

  submit(input: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  /** Inputs waiting for a run (for tests and metrics). */
  get waiting(): number {
    return this.queue.length;
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= this.options.maxInFlight || this.queue.length === 0) {
      return;
    }
    this.scheduled = true;
    // The callers of this turn of the event loop join the batch.
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (this.inFlight < this.options.maxInFlight && this.queue.length > 0) {
      const batch = this.queue.splice(0, this.options.maxBatch);
      this.inFlight += 1;
      void this.runBatch(batch).finally(() => {
        this.inFlight -= 1;
        this.schedule();
      });
    }
  }

  private async runBatch(batch: readonly Waiting<I, O>[]): Promise<void> {
    let outputs: readonly O[];
    try {
      outputs = await this.run(batch.map((w) => w.input));
      if (outputs.length !== batch.length) {
        throw new Error(`a batch of ${batch.length} answered ${outputs.length} outputs`);
      }
    } catch (error) {
      batch.forEach((w) => w.reject(error));
      return;
    }
    batch.forEach((w, i) => w.resolve(outputs[i]!));
  }
}
