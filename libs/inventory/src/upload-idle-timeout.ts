/** The uploader sent nothing for `timeoutMs`: the import is abandoned (rolled back, connection released). */
export class UploadIdleTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`the upload sent no data for ${timeoutMs} ms (INVENTORY_UPLOAD_IDLE_TIMEOUT_MS); nothing was imported`);
    this.name = 'UploadIdleTimeoutError';
  }
}

/**
 * `source`, but failing with UploadIdleTimeoutError when one chunk takes longer than `timeoutMs` to
 * arrive. An import holds a database transaction while it reads: without this, a client that sends
 * part of a body and stalls holds a pool connection for as long as its socket stays open.
 *
 * On a timeout the source's iterator is told to return without being awaited (a stream iterator
 * answers return() only after its pending read, which a stalled client never completes); whoever
 * owns the connection decides what to do with it.
 */
export async function* withIdleTimeout<T>(source: AsyncIterable<T>, timeoutMs: number): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      const next = iterator.next();
      let timer: NodeJS.Timeout | undefined;
      const idle = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new UploadIdleTimeoutError(timeoutMs)), timeoutMs);
      });
      let result: IteratorResult<T>;
      try {
        result = await Promise.race([next, idle]);
      } catch (error) {
        next.catch(() => undefined);
        finished = error instanceof UploadIdleTimeoutError;
        if (finished) {
          void iterator.return?.()?.catch(() => undefined);
        }
        throw error;
      } finally {
        clearTimeout(timer);
      }
      if (result.done === true) {
        finished = true;
        return;
      }
      yield result.value;
    }
  } finally {
    if (!finished) {
      await iterator.return?.();
    }
  }
}
