/**
 * How commands reach a TPM: one whole command in, one whole response out (Part 1 §18: the TPM
 * processes one command at a time). Implementations serialize concurrent callers.
 */
export interface TpmTransport {
  /** What to name in errors: `swtpm:127.0.0.1:2321`, `/dev/tpmrm0`. */
  readonly description: string;
  transmit(command: Buffer): Promise<Buffer>;
  close(): Promise<void>;
}

/** TPM response header size: tag u16 ‖ responseSize u32 ‖ responseCode u32 (Part 1 §18.4). */
export const RESPONSE_HEADER_SIZE = 10;

/** The largest response we accept; TPMs answer within MAX_RESPONSE_SIZE, 4096 on PC Client parts. */
export const MAX_RESPONSE_SIZE = 4096;

/** Runs `work` after everything queued before it, so one command is on the wire at a time. */
export class CommandQueue {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.tail.then(work, work);
    this.tail = next.catch(() => undefined);
    return next;
  }
}
