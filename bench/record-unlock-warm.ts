import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openTransport, TpmClient, type TpmTransport } from '@rackseal/tpm2';
import { encodeDeliveryPayload } from '@rackseal/node-api-contracts';
import { wrapToApprovedPcrPolicy } from '@rackseal/wrapping';
import { unwrapEnvelope } from '../apps/agent/src/unwrap/unwrap-envelope';
import { approvalsForEnvelope } from '../apps/agent/src/unlock/approvals-cache';
import { warmUnlockTpmPath, withDeterministicRandom, type WarmTranscript } from '../apps/agent/src/unlock-snapshot-warm-tpm';
import { ApprovalSigner, currentPcrSet, provisionMachine } from '../test/support/wrapping';
import { withBenchSwtpm, withSwtpmClient } from './bench-swtpm';

/**
 * `npx tsc -p tsconfig.bench.json && npx tsc-alias -p tsconfig.bench.json && node
 * dist/bench/record-unlock-warm.js` (then `npm run build`): records the exchange the startup snapshot's build-time warm-up replays
 * (apps/agent/src/unlock-snapshot-warm-tpm.ts) into apps/agent/src/unlock-warm-transcript.ts. A
 * fresh swtpm with a throwaway EK, a throwaway approval signer and a disk key of 32 bytes 0x5a: nothing
 * of any machine. Run it again when the TPM client's unlock path changes (the warm-up's test fails).
 */
class RecordingTransport implements TpmTransport {
  readonly responses: string[] = [];

  constructor(private readonly inner: TpmTransport) {}

  get description(): string {
    return this.inner.description;
  }

  async transmit(command: Buffer): Promise<Buffer> {
    const response = await this.inner.transmit(command);
    this.responses.push(response.toString('hex'));
    return response;
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

async function record(): Promise<WarmTranscript> {
  return withBenchSwtpm(async (swtpm) => {
    const machine = await withSwtpmClient(swtpm.device, provisionMachine);
    const signer = new ApprovalSigner();
    const group = 'warm-up';
    const epoch = 1;
    const payload = encodeDeliveryPayload({ format: 1, kind: 'disk', key: Buffer.alloc(32, 0x5a).toString('base64'), generation: 1 });
    const envelope = wrapToApprovedPcrPolicy({ ekPublic: machine.ekPublic, group, epoch, signingKeyName: signer.name }, payload, { deliveryId: 'warm-up', secretVersion: 1 });
    const approvals = approvalsForEnvelope([signer.approvals(group, epoch, [await withSwtpmClient(swtpm.device, currentPcrSet)])], group, epoch)!;
    const transport = new RecordingTransport(await openTransport(swtpm.device));
    const client = new TpmClient(transport);
    try {
      (await withDeterministicRandom(() => unwrapEnvelope(client, envelope, { ekPubHash: machine.ekPubHash }, { approvals }))).fill(0);
    } finally {
      await client.close();
    }
    return { ekPubHash: machine.ekPubHash, envelope: envelope.toString('base64'), approvals, responses: transport.responses };
  });
}

async function main(): Promise<void> {
  const transcript = await record();
  // The replay must verify before it is kept.
  const replayed = await warmUnlockTpmPath(transcript);
  const file = join(__dirname, '..', '..', 'apps', 'agent', 'src', 'unlock-warm-transcript.ts');
  writeFileSync(
    file,
    `// Written by bench/record-unlock-warm.ts (a throwaway swtpm EK, approval signer and disk key 0x5a…):\n` +
      `// the exchange apps/agent/src/unlock-snapshot-warm-tpm.ts replays while the startup snapshot is built.\n` +
      `import type { WarmTranscript } from './unlock-snapshot-warm-tpm';\n\n` +
      `export const WARM_TRANSCRIPT: WarmTranscript = ${JSON.stringify(transcript, null, 2)};\n`,
  );
  process.stdout.write(`${file}: ${replayed} commands\n`);
}

void main().catch((error: unknown) => {
  process.stderr.write(`record-unlock-warm failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
