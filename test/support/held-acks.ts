import { DELIVERIES_POLL_ROUTE, deliveryAckRoute, nodeApiPath } from '@rackseal/node-api-contracts';
import type { RelayInterceptor } from './tcp-proxy';

/** An ack's request line as the agent's ack route sends it (HTTP/1.1, RFC 9112 §3), the delivery id captured. */
const ACK_REQUEST_LINE = new RegExp(`POST ${nodeApiPath(deliveryAckRoute('([0-9a-f-]{36})'))} HTTP/1\\.1\\r\\n`);
/** The request line of the poll that carries acks (their ids are in its JSON body). */
const POLL_REQUEST_LINE = new RegExp(`POST ${nodeApiPath(DELIVERIES_POLL_ROUTE)}(\\?[^ ]*)? HTTP/1\\.1\\r\\n`);
const CARRIED_ID = /"id":"([0-9a-f-]{36})"/g;
const HEAD_END = '\r\n\r\n';

/**
 * A TcpProxy interceptor between an agent and the control plane that can stop acks from reaching
 * the server: while armed, a request acking any delivery not in `except` — its ack route, or the
 * poll that carries acks (POST …/deliveries/poll, the agent's way; its body is read whole first) —
 * is held: its connection gets nothing more through, so the server never sees the request and the
 * agent waits for an answer; the delivery ids are recorded. A test then kills the agent at a known
 * point: the install done, the ack not taken. Everything else (plain polls, attestations,
 * approvals) goes through untouched.
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

  /** The ids of `ids` an armed hold stops; none when disarmed. */
  private stopped(ids: readonly string[]): string[] {
    const except = this.except;
    return except === undefined ? [] : ids.filter((id) => !except.has(id));
  }

  private record(ids: readonly string[]): void {
    ids.filter((id) => !this.held.includes(id)).forEach((id) => this.held.push(id));
  }

  /** The interceptor for one relayed connection (TcpProxy.start's factory). */
  readonly interceptor = (): RelayInterceptor => {
    let holding = false;
    /** A POST poll read so far (its head and part of its body), kept until it is whole. */
    let poll: Buffer | undefined;
    return {
      fromClient: (chunk) => {
        if (holding) {
          return Buffer.alloc(0);
        }
        let text = chunk.toString('latin1');
        let before = 0;
        if (poll === undefined) {
          const ack = ACK_REQUEST_LINE.exec(text);
          if (ack !== null) {
            const stopped = this.stopped([ack[1]!]);
            if (stopped.length === 0) {
              return chunk;
            }
            holding = true;
            this.record(stopped);
            // A request starts a chunk on a kept-alive connection; whatever came before it goes through.
            return chunk.subarray(0, ack.index);
          }
          const start = POLL_REQUEST_LINE.exec(text);
          if (start === null) {
            return chunk;
          }
          before = start.index;
          poll = chunk.subarray(before);
        } else {
          poll = Buffer.concat([poll, chunk]);
        }
        text = poll.toString('latin1');
        const headEnd = text.indexOf(HEAD_END);
        const length = /\r\ncontent-length: *(\d+)\r\n/i.exec(text.slice(0, headEnd + 2));
        if (headEnd < 0 || length === null || poll.length < headEnd + HEAD_END.length + Number(length[1])) {
          // Not whole yet: what came before the poll goes through, the poll waits for its body.
          return chunk.subarray(0, before);
        }
        const whole = poll;
        poll = undefined;
        const stopped = this.stopped([...text.slice(headEnd).matchAll(CARRIED_ID)].map((m) => m[1]!));
        if (stopped.length > 0) {
          holding = true;
          this.record(stopped);
          return chunk.subarray(0, before);
        }
        return before > 0 ? Buffer.concat([chunk.subarray(0, before), whole]) : whole;
      },
      fromService: (chunk) => chunk,
    };
  };
}
