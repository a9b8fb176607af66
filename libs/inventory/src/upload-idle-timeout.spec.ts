import { MIN_UPLOAD_BYTES_PER_SECOND, UploadIdleTimeoutError, withIdleTimeout } from './upload-idle-timeout';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) {
    out.push(item);
  }
  return out;
}

describe('withIdleTimeout', () => {
  it('names a stall with nothing received as such', async () => {
    const never: AsyncIterable<string> = { [Symbol.asyncIterator]: () => ({ next: () => new Promise<IteratorResult<string>>(() => undefined) }) };
    await expect(collect(withIdleTimeout(never, 20))).rejects.toThrow('the upload sent no data for 20 ms (INVENTORY_UPLOAD_IDLE_TIMEOUT_MS); nothing was imported');
  });

  it('passes every chunk of a source that keeps sending, and ends with it', async () => {
    async function* steady(): AsyncGenerator<string> {
      for (const chunk of ['a', 'b', 'c']) {
        await new Promise((resolve) => setImmediate(resolve));
        yield chunk;
      }
    }
    expect(await collect(withIdleTimeout(steady(), 1000))).toEqual(['a', 'b', 'c']);
  });

  it('fails with UploadIdleTimeoutError naming the timeout when a chunk does not come, and tells the source to return', async () => {
    let returned = false;
    const stalled: AsyncIterable<string> = {
      [Symbol.asyncIterator]: () => {
        let sent = false;
        return {
          next: () => (sent ? new Promise<IteratorResult<string>>(() => undefined) : ((sent = true), Promise.resolve({ done: false, value: 'header\n' }))),
          return: () => {
            returned = true;
            return Promise.resolve({ done: true, value: undefined });
          },
        };
      },
    };
    const chunks: string[] = [];
    const reading = (async () => {
      for await (const chunk of withIdleTimeout(stalled, 20)) {
        chunks.push(chunk);
      }
    })();
    await expect(reading).rejects.toThrow(UploadIdleTimeoutError);
    // 7 bytes are below the window's share of the minimum rate (21 bytes in 20 ms): they are named.
    await expect(reading).rejects.toThrow('the upload sent only 7 bytes in 20 ms (INVENTORY_UPLOAD_IDLE_TIMEOUT_MS), below the minimum of 1024 bytes/s; nothing was imported');
    expect(chunks).toEqual(['header\n']);
    expect(returned).toBe(true);
  });

  it('cuts off a trickle: bytes that keep coming but below the minimum rate do not reset the window', async () => {
    // A 200 ms window asks for 205 bytes (1 KiB/s); one byte every 20 ms is 50 bytes/s.
    let sent = 0;
    async function* trickle(): AsyncGenerator<Buffer> {
      for (;;) {
        await sleep(20);
        sent++;
        yield Buffer.from('x');
      }
    }
    const started = Date.now();
    const reading = collect(withIdleTimeout(trickle(), 200));
    await expect(reading).rejects.toThrow(UploadIdleTimeoutError);
    await expect(reading).rejects.toThrow(/^the upload sent only \d+ bytes in 200 ms \(INVENTORY_UPLOAD_IDLE_TIMEOUT_MS\), below the minimum of 1024 bytes\/s; nothing was imported$/);
    // Ended by the window, not by the source: far fewer bytes than a reset-per-chunk timer would take forever to refuse.
    expect(sent).toBeLessThan(20);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('keeps an upload at the minimum rate or faster, however long it lasts', async () => {
    // 300 bytes every 50 ms = 6 KiB/s over 30 chunks (1.5 s), with a 200 ms window.
    async function* steadySlow(): AsyncGenerator<Buffer> {
      for (let i = 0; i < 30; i++) {
        await sleep(50);
        yield Buffer.alloc(300, 0x61);
      }
    }
    const chunks = await collect(withIdleTimeout(steadySlow(), 200));
    expect(chunks).toHaveLength(30);
    expect(MIN_UPLOAD_BYTES_PER_SECOND).toBe(1024);
  });

  it('does not count the time the importer spends between reads against the client', async () => {
    // Each chunk is tiny, but the client answers at once: all the time goes to the (slow) consumer.
    async function* prompt(): AsyncGenerator<string> {
      for (let i = 0; i < 10; i++) {
        yield 'a';
      }
    }
    const got: string[] = [];
    for await (const chunk of withIdleTimeout(prompt(), 50)) {
      got.push(chunk);
      await sleep(30);
    }
    expect(got).toHaveLength(10);
  });
});
