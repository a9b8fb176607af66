import { TpmWriter } from '../codec/tpm-writer';
import { TPM_ST } from '../constants';

export interface FakeAnswer {
  readonly rc?: number;
  readonly handles?: readonly number[];
  readonly parameters?: Buffer;
}

/**
 * For specs that stand in for a TPM: the response a TPM would send to `command` (Part 1 §18.4),
 * with one session acknowledgement (empty nonce, `sessionAttributes`, empty HMAC) when the command
 * carried sessions. Not exported from the library index.
 */
export function fakeResponse(command: Buffer, answer: FakeAnswer, sessionAttributes = 0x01): Buffer {
  if (answer.rc !== undefined && answer.rc !== 0) {
    return new TpmWriter().u16(TPM_ST.TPM_ST_NO_SESSIONS).u32(10).u32(answer.rc).toBuffer();
  }
  const tag = command.readUInt16BE(0);
  const body = new TpmWriter();
  (answer.handles ?? []).forEach((h) => body.u32(h));
  const parameters = answer.parameters ?? Buffer.alloc(0);
  if (tag === TPM_ST.TPM_ST_SESSIONS) {
    body.u32(parameters.length).bytes(parameters).tpm2b(Buffer.alloc(0)).u8(sessionAttributes).tpm2b(Buffer.alloc(0));
  } else {
    body.bytes(parameters);
  }
  const content = body.toBuffer();
  return new TpmWriter().u16(tag).u32(10 + content.length).u32(0).bytes(content).toBuffer();
}

/** A TPM transport for specs: answers each command as `answer` says and records what it was sent. */
export class FakeTpm {
  readonly description = 'fake';
  readonly sent: Buffer[] = [];

  constructor(
    private readonly answer: (code: number) => FakeAnswer,
    private readonly sessionAttributes = 0x01,
  ) {}

  async transmit(command: Buffer): Promise<Buffer> {
    this.sent.push(command);
    return fakeResponse(command, this.answer(command.readUInt32BE(6)), this.sessionAttributes);
  }

  async close(): Promise<void> {}

  /** The command codes sent, in order. */
  get codes(): number[] {
    return this.sent.map((c) => c.readUInt32BE(6));
  }
}
