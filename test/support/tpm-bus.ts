import type { RelayInterceptor } from './tcp-proxy';

/** One command and the response the TPM gave it, as they crossed the relay. */
export interface BusExchange {
  readonly command: Buffer;
  /** What the client received (after any tampering). */
  readonly response: Buffer;
}

/**
 * A sniffer (and, when armed, a tampering interposer) on the bus between a client and swtpm's data
 * channel, used as TcpProxy's interceptor: `TcpProxy.start(target, () => bus.interceptor())`. The
 * channel carries bare TPM commands and responses (Part 1 §18: tag u16, size u32, ...), so messages
 * are framed by their size field. Every byte in both directions is kept, in order, in `bytes()`.
 */
export class TpmBus {
  private readonly chunks: Buffer[] = [];
  readonly exchanges: BusExchange[] = [];
  /** Rewrites one response, then disarms: the tampering bus of a test. */
  private tamper: ((command: Buffer, response: Buffer) => Buffer | undefined) | undefined;
  /** Rewrites one command on its way to the TPM, then disarms. */
  private tamperCommand: ((command: Buffer) => Buffer | undefined) | undefined;

  /** Everything that crossed the relay so far, both directions, in order. */
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** From now on record afresh. */
  clear(): void {
    this.chunks.length = 0;
    this.exchanges.length = 0;
  }

  /**
   * Arms a rewrite of the next response `rewrite` returns bytes for (it returns undefined for the
   * responses it lets through unchanged). Disarmed after one rewrite.
   */
  tamperOnce(rewrite: (command: Buffer, response: Buffer) => Buffer | undefined): void {
    this.tamper = rewrite;
  }

  /** Arms a rewrite of the next command `rewrite` returns bytes for; disarmed after one rewrite. */
  tamperCommandOnce(rewrite: (command: Buffer) => Buffer | undefined): void {
    this.tamperCommand = rewrite;
  }

  interceptor(): RelayInterceptor {
    const toService = new Framer();
    const toClient = new Framer();
    const pending: Buffer[] = [];
    return {
      fromClient: (chunk) => {
        const messages = toService.push(chunk).map((original) => {
          const rewritten = this.tamperCommand?.(original);
          if (rewritten !== undefined) {
            this.tamperCommand = undefined;
            return rewritten;
          }
          return original;
        });
        for (const command of messages) {
          this.chunks.push(command);
          pending.push(command);
        }
        return Buffer.concat(messages);
      },
      fromService: (chunk) => {
        const out: Buffer[] = [];
        for (const original of toClient.push(chunk)) {
          const command = pending.shift() ?? Buffer.alloc(0);
          let response = original;
          const rewritten = this.tamper?.(command, original);
          if (rewritten !== undefined) {
            this.tamper = undefined;
            response = rewritten;
          }
          this.chunks.push(response);
          this.exchanges.push({ command, response });
          out.push(response);
        }
        return Buffer.concat(out);
      },
    };
  }
}

/** Cuts a byte stream into TPM messages by the u32 size at offset 2. */
class Framer {
  private buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.buffer = Buffer.concat([this.buffer, chunk]);
    const messages: Buffer[] = [];
    while (this.buffer.length >= 6) {
      const size = this.buffer.readUInt32BE(2);
      if (size < 10 || this.buffer.length < size) {
        break;
      }
      messages.push(this.buffer.subarray(0, size));
      this.buffer = this.buffer.subarray(size);
    }
    return messages;
  }
}

/** Every offset at which `needle` occurs in `haystack` (an empty needle matches nowhere). */
export function occurrences(haystack: Buffer, needle: Buffer): number[] {
  const found: number[] = [];
  if (needle.length === 0) {
    return found;
  }
  for (let at = haystack.indexOf(needle); at >= 0; at = haystack.indexOf(needle, at + 1)) {
    found.push(at);
  }
  return found;
}

/** A command's authorization area (Part 1 §18.2): each session's handle and sessionAttributes. */
export function sessionsOf(command: Buffer, handles: number): { handle: number; attributes: number }[] {
  let at = 10 + 4 * handles;
  const end = at + 4 + command.readUInt32BE(at);
  at += 4;
  const sessions: { handle: number; attributes: number }[] = [];
  while (at < end) {
    const handle = command.readUInt32BE(at);
    at += 4;
    at += 2 + command.readUInt16BE(at);
    const attributes = command.readUInt8(at);
    at += 1;
    at += 2 + command.readUInt16BE(at);
    sessions.push({ handle, attributes });
  }
  return sessions;
}
