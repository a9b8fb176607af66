import { deliveryAckRoute, nodeApiPath } from '@rackseal/node-api-contracts';
import type { RelayInterceptor } from './tcp-proxy';

/** An ack's request line as the agent sends it (HTTP/1.1, RFC 9112 §3), the delivery id captured. */
const ACK_REQUEST_LINE = new RegExp(`POST ${nodeApiPath(deliveryAckRoute('([0-9a-f-]{36})'))} HTTP/1\\.1\\r\\n`);

/**
 * A TcpProxy interceptor between an agent and the control plane that can stop acks from reaching
 * the server: while armed, the ack of any delivery not in `except` is held — its connection gets
 * nothing more through, so the server never sees the request and the agent waits for an answer —
 * and its delivery id recorded. A test then kills the agent at a known point: the install done, the
 * ack not taken. Everything else (long polls, attestations, approvals) goes through untouched.
 */
export class HeldAcks {
  /** Delivery ids whose ack was held, in order (an agent's retries of one ack count once). */
  readonly held: string[] = [];
  private except: ReadonlySet<string> | undefined;

  /** Holds every ack from now on but those of `except` (the deliveries that existed before); `held` starts afresh. */
  holdAllBut(except: Iterable<string>): void {
    this.held.length = 0;
    this.except = new Set(except);
  }

  /** Lets acks through again (connections already held stay held until their client goes). */
  release(): void {
    this.except = undefined;
  }

  /** The interceptor for one relayed connection (TcpProxy.start's factory). */
  readonly interceptor = (): RelayInterceptor => {
    let holding = false;
    return {
      fromClient: (chunk) => {
        if (holding) {
          return Buffer.alloc(0);
        }
        const ack = ACK_REQUEST_LINE.exec(chunk.toString('latin1'));
        if (ack === null || this.except === undefined || this.except.has(ack[1]!)) {
          return chunk;
        }
        holding = true;
        if (!this.held.includes(ack[1]!)) {
          this.held.push(ack[1]!);
        }
        // A request starts a chunk on a kept-alive connection; whatever came before it goes through.
        return chunk.subarray(0, ack.index);
      },
      fromService: (chunk) => chunk,
    };
  };
}
