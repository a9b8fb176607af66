import { UploadIdleTimeoutError, withIdleTimeout } from './upload-idle-timeout';

async function collect<T>(source: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of source) {
    out.push(item);
  }
  return out;
}

describe('withIdleTimeout', () => {
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
    await expect(reading).rejects.toThrow('the upload sent no data for 20 ms (INVENTORY_UPLOAD_IDLE_TIMEOUT_MS); nothing was imported');
    expect(chunks).toEqual(['header\n']);
    expect(returned).toBe(true);
  });
});
