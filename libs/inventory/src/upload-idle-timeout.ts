import { InventoryError } from './inventory-errors';

/**
 * The slowest upload an import waits for, averaged over each idle window: 1 KiB/s. A client that
 * trickles a byte now and then (a slowloris) would otherwise reset the idle timer forever and hold an
 * import slot and a database connection; any real link is orders of magnitude faster.
 */
export const MIN_UPLOAD_BYTES_PER_SECOND = 1024;

/**
 * The uploader sent nothing (or less than the minimum rate allows) while the import waited for
 * `timeoutMs`: the import is abandoned (rolled back, connection released).
 */
export class UploadIdleTimeoutError extends InventoryError {
  constructor(
    readonly timeoutMs: number,
    /** Bytes that did arrive in that window: 0 for a stall, more for a trickle. */
    readonly receivedBytes = 0,
  ) {
    super(
      'inventory.upload-idle',
      receivedBytes === 0
        ? `the upload sent no data for ${timeoutMs} ms (INVENTORY_UPLOAD_IDLE_TIMEOUT_MS); nothing was imported`
        : `the upload sent only ${receivedBytes} bytes in ${timeoutMs} ms (INVENTORY_UPLOAD_IDLE_TIMEOUT_MS), below the minimum of ${MIN_UPLOAD_BYTES_PER_SECOND} bytes/s; nothing was imported`,
    );
    this.name = 'UploadIdleTimeoutError';
  }
}

function byteLength(chunk: unknown): number {
  if (typeof chunk === 'string') {
    return Buffer.byteLength(chunk);
  }
  return (chunk as { byteLength?: number }).byteLength ?? 0;
}

/**
 * `source`, but failing with UploadIdleTimeoutError when the import waits `timeoutMs` in all without
 * the window's share of the minimum rate arriving (`timeoutMs` × MIN_UPLOAD_BYTES_PER_SECOND; a
 * stall is the case of nothing at all). An import holds a database transaction while it reads:
 * without this, a client that sends part of a body and stalls — or trickles it — holds a pool
 * connection for as long as its socket stays open. Only time spent waiting for the client counts;
 * while the importer is busy (checking, writing) the client is held back by TCP and is not to blame.
 *
 * On a timeout the source's iterator is told to return without being awaited (a stream iterator
 * answers return() only after its pending read, which a stalled client never completes); whoever
 * owns the connection decides what to do with it.
 */
export async function* withIdleTimeout<T>(source: AsyncIterable<T>, timeoutMs: number): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const windowBytes = Math.ceil((timeoutMs / 1000) * MIN_UPLOAD_BYTES_PER_SECOND);
  // The current window: time spent waiting for the client, and what arrived meanwhile.
  let waitedMs = 0;
  let receivedBytes = 0;
  let finished = false;
  try {
    for (;;) {
      const next = iterator.next();
      let timer: NodeJS.Timeout | undefined;
      const startedWaiting = performance.now();
      const idle = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new UploadIdleTimeoutError(timeoutMs, receivedBytes)), Math.max(0, timeoutMs - waitedMs));
      });
      let result: IteratorResult<T>;
      try {
        result = await Promise.race([next, idle]);
        waitedMs += performance.now() - startedWaiting;
        if (result.done !== true) {
          receivedBytes += byteLength(result.value);
          if (receivedBytes >= windowBytes) {
            waitedMs = 0;
            receivedBytes = 0;
          }
        }
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
