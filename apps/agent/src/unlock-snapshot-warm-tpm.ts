/*
 * The TPM half of the startup snapshot's build-time warm-up (unlock-snapshot-warm.ts does the pure
 * front): an offline unlock's unwrapEnvelope — salted sessions, the Import and Load, the approval's
 * policy, the Unseal, the envelope's AES-GCM — run once while `node --build-snapshot` runs, against
 * a transport that replays a recorded exchange instead of a TPM, so that the blob carries the bytecode
 * of the TPM client's path (bench/README.md, "unlock: the TPM half warmed at build time").
 *
 * The exchange (unlock-warm-transcript.ts) was recorded once from swtpm with a throwaway EK, a
 * throwaway disk key and throwaway approvals (bench/record-unlock-warm.ts): nothing of any machine.
 * A replay only verifies if the client sends the same session secrets as when it was recorded — the
 * responses' HMACs and the Unseal's parameter encryption are keyed by the salt and the caller's
 * nonces — so for this one run node:crypto's randomBytes is a counter hash (deterministicRandomBytes),
 * then put back; a real unlock never runs with it (nor the blob: a replay that never settles fails the
 * build). The disk key the replay yields is zeroed (its bytes, and the text RegExp kept), and the
 * public KeyObjects the run made are dropped (a live KeyObject aborts `--build-snapshot`).
 */
// The module object itself (what every `import { randomBytes } from 'node:crypto'` reads at each call), not a namespace copy.
import nodeCrypto from 'node:crypto';
import { startupSnapshot } from 'node:v8';
import { parseDeliveryPayload } from '@rackseal/node-api-contracts/delivery-payloads';
import type { ApprovalsResponse } from '@rackseal/node-api-contracts/approvals';
import { TpmClient } from '@rackseal/tpm2/client/tpm-client';
import type { TpmTransport } from '@rackseal/tpm2/client/transport';
import { forgetPublicKeyObjects } from '@rackseal/tpm2/keys';
import { unwrapEnvelope } from './unwrap/unwrap-envelope';
import { WARM_TRANSCRIPT } from './unlock-warm-transcript';

/** The recorded exchange: what unwrapEnvelope was given and what the TPM answered, in order. */
export interface WarmTranscript {
  readonly ekPubHash: string;
  /** base64 */
  readonly envelope: string;
  readonly approvals: ApprovalsResponse;
  /** The TPM's responses, hex, in the order the commands were sent. */
  readonly responses: readonly string[];
}

/** Not random: `size` bytes of SHA-256(label ‖ counter) blocks, the counter shared by every call of one run. */
export function deterministicRandomBytes(label: string): (size: number) => Buffer {
  let counter = 0;
  return (size) => {
    const blocks: Buffer[] = [];
    for (let have = 0; have < size; have += 32) {
      blocks.push(nodeCrypto.createHash('sha256').update(`${label} ${counter++}`).digest());
    }
    return Buffer.concat(blocks).subarray(0, size);
  };
}

/** The label of the one deterministic stream, the same when recording and replaying. */
export const WARM_RANDOM_LABEL = 'rackseal unlock snapshot warm-up';

/**
 * Runs `work` with node:crypto's randomBytes replaced by deterministicRandomBytes(WARM_RANDOM_LABEL)
 * for synchronous calls (the TPM client's nonces and salts), put back when `work` settles.
 */
export async function withDeterministicRandom<T>(work: () => Promise<T>): Promise<T> {
  const crypto = nodeCrypto as { randomBytes: typeof nodeCrypto.randomBytes };
  const original = crypto.randomBytes;
  const draw = deterministicRandomBytes(WARM_RANDOM_LABEL);
  crypto.randomBytes = ((size: number, callback?: unknown) => (callback === undefined ? draw(size) : original(size, callback as never))) as typeof nodeCrypto.randomBytes;
  if (startupSnapshot.isBuildingSnapshot()) {
    // `--build-snapshot` writes the heap once the event loop is empty, settled or not: a `work` that
    // never settles (a promise nothing resolves) would leave the counter in the blob, drawn by every
    // boot's salts and nonces. At serialization it is put back and the build fails, writing no blob.
    startupSnapshot.addSerializeCallback(() => {
      if (crypto.randomBytes !== original) {
        crypto.randomBytes = original;
        process.exitCode = 1;
        process.stderr.write('rackseal: the startup snapshot was taken with the warm-up\'s deterministic randomBytes in place (the replay never settled); no blob written\n');
      }
    });
  }
  try {
    return await work();
  } finally {
    crypto.randomBytes = original;
  }
}

/** Answers each command with the next recorded response; refuses past the end. */
class ReplayTransport implements TpmTransport {
  readonly description = 'the recorded warm-up exchange';
  private next = 0;

  constructor(private readonly responses: readonly string[]) {}

  transmit(): Promise<Buffer> {
    const response = this.responses[this.next++];
    return response === undefined ? Promise.reject(new Error(`the warm-up sent more than the ${this.responses.length} recorded commands`)) : Promise.resolve(Buffer.from(response, 'hex'));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  get replayed(): number {
    return this.next;
  }
}

/**
 * Replays `transcript` through unwrapEnvelope and the delivery payload's parse, as an offline unlock
 * runs them, and gives the number of commands replayed. Throws if the replay no longer verifies (the
 * TPM client's path changed: record again with bench/record-unlock-warm.ts).
 */
export async function warmUnlockTpmPath(transcript: WarmTranscript = WARM_TRANSCRIPT): Promise<number> {
  const transport = new ReplayTransport(transcript.responses);
  try {
    const payload = await withDeterministicRandom(() =>
      unwrapEnvelope(new TpmClient(transport), Buffer.from(transcript.envelope, 'base64'), { ekPubHash: transcript.ekPubHash }, { approvals: transcript.approvals }),
    );
    try {
      const parsed = parseDeliveryPayload(payload, (bytes) => {
        const copy = Buffer.from(bytes);
        bytes.fill(0);
        return copy.fill(0);
      });
      if (parsed.kind !== 'disk') {
        throw new Error(`the warm-up transcript holds a ${parsed.kind} secret, not a disk key`);
      }
    } finally {
      payload.fill(0);
    }
    if (transport.replayed !== transcript.responses.length) {
      throw new Error(`the warm-up replayed ${transport.replayed} of ${transcript.responses.length} recorded commands`);
    }
    return transport.replayed;
  } finally {
    forgetPublicKeyObjects();
    forgetLastMatch();
  }
}

/**
 * Points RegExp's legacy statics (RegExp.input, RegExp.lastMatch, $1…: the last successful match's
 * subject, kept by the realm — ECMAScript proposal "RegExp Legacy Features") at an empty string. The
 * payload's parse checks the disk key's base64 with a regular expression, which left that text
 * reachable from the realm, and so in the blob, after the payload's bytes were zeroed.
 */
function forgetLastMatch(): void {
  EMPTY_MATCH.exec('');
}

const EMPTY_MATCH = /(?:)/;
