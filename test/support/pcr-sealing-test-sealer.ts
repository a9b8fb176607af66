/**
 * A test-only EnvelopeSealer (libs/deliveries' port) that seals `pcr-sealed` deliveries for real,
 * with libs/wrapping's wrapToApprovedPcrPolicy to the EK it is given at the group's current
 * sealing target (PcrApprovals.sealingTarget), for the pre-wrap suite (test/prewrap.test.ts) while
 * the product's adapter is wired on another branch. The payload the deliveries hand over is the
 * stand-in JSON (`v: 1`, serialiseDeliveryPayload); a disk one is re-encoded as the agent's
 * DeliveryPayload (`{format: 1, kind: 'disk', key, generation}`, generation = the secret version),
 * what `rackseal-agent unlock` parses. The content key is recorded only to compute the ack proof a
 * real agent computes after unwrapping: HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id).
 */
import { createHmac } from 'node:crypto';
import type { SealingTarget } from '@rackseal/attestation';
import { EnvelopeSealer, type Sealed, type SealInput } from '@rackseal/deliveries';
import { encodeDeliveryPayload } from '@rackseal/node-api-contracts';
import { systemRandom, unmarshalTpmtPublic } from '@rackseal/tpm2';
import { wrapToApprovedPcrPolicy } from '@rackseal/wrapping';

export class PcrSealingTestSealer extends EnvelopeSealer {
  /** Set once the worker exists: its PcrApprovals' sealingTarget. */
  targetOf: ((group: string) => Promise<SealingTarget>) | undefined;
  /** The ack proof of each delivery's latest seal: what the simulated agent acks with. */
  readonly proofs = new Map<string, Buffer>();

  async seal(input: SealInput): Promise<Sealed> {
    if (input.binding !== 'pcr-sealed' || input.machine.group === null || this.targetOf === undefined) {
      throw new Error('PcrSealingTestSealer seals pcr-sealed deliveries of machines in a group only');
    }
    const target = await this.targetOf(input.machine.group);
    const standIn = JSON.parse(input.payload.toString('utf8')) as { v: number; kind: string; version: number; material: string };
    if (standIn.v !== 1 || standIn.kind !== 'disk') {
      throw new Error('PcrSealingTestSealer re-encodes disk payloads only');
    }
    const payload = encodeDeliveryPayload({ format: 1, kind: 'disk', key: standIn.material, generation: standIn.version });
    let contentKey: Buffer | undefined;
    // The content key is the wrap's first draw (pcr-sealed-wrap.ts); copied, since the wrap zeroes its own.
    const recording = (size: number): Buffer => {
      const bytes = systemRandom(size);
      contentKey ??= Buffer.from(bytes);
      return bytes;
    };
    try {
      const envelope = wrapToApprovedPcrPolicy(
        { ekPublic: unmarshalTpmtPublic(input.machine.ekPublic), group: input.machine.group, epoch: target.epoch, signingKeyName: target.signingKeyName },
        payload,
        { deliveryId: input.deliveryId, secretVersion: Number(input.secretVersion.slice(input.secretVersion.lastIndexOf('@') + 1)) },
        { random: recording },
      );
      const ackProof = createHmac('sha256', contentKey!).update(Buffer.concat([Buffer.from('rackseal ack v1'), Buffer.from(input.deliveryId)])).digest();
      this.proofs.set(input.deliveryId, Buffer.from(ackProof));
      return { envelope, ackProof };
    } finally {
      payload.fill(0);
      contentKey?.fill(0);
    }
  }
}
