import { inspect } from 'node:util';

/**
 * Key material that must never reach a log, an error message or a JSON body.
 * Every way Node turns an object into text (JSON, util.inspect, template strings)
 * sees only a redaction marker; the bytes are reachable only through `reveal()`,
 * which makes each use of the secret easy to find in review.
 */
export class SecretBytes {
  readonly #bytes: Buffer;

  constructor(bytes: Buffer) {
    this.#bytes = Buffer.from(bytes);
  }

  get length(): number {
    return this.#bytes.length;
  }

  reveal(): Buffer {
    return Buffer.from(this.#bytes);
  }

  toJSON(): string {
    return '[redacted]';
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return 'SecretBytes([redacted])';
  }
}
