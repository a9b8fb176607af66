/**
 * A test-only EnvelopeSealer (libs/deliveries' port) with real crypto, for the delivery suites while
 * the wrapping library (issue 13 item 5) lives on another branch: not the product's envelope. Each
 * machine has a software key the simulated agent knows, HMAC-SHA256(fleet key, machine id); a
 * fresh 32-byte content key is wrapped to it with AES-256-GCM (the delivery id as AAD), the payload
 * encrypted under the content key with AES-256-GCM (delivery id ‖ 0 ‖ secret version number as AAD), and
 * the ack proof is HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id).
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { EnvelopeSealer, type Sealed, type SealInput } from '@rackseal/deliveries';

const MAGIC = Buffer.from('RSTEST1');
const IV = 12;
const TAG = 16;
const KEY = 32;

export function testMachineKey(fleetKey: Buffer, machineId: string): Buffer {
  return createHmac('sha256', fleetKey).update(`rackseal test machine key ${machineId}`).digest();
}

export function ackProofOf(contentKey: Buffer, deliveryId: string): Buffer {
  return createHmac('sha256', contentKey).update(Buffer.concat([Buffer.from('rackseal ack v1'), Buffer.from(deliveryId)])).digest();
}

function seal(key: Buffer, plain: Buffer, aad: Buffer): Buffer {
  const iv = randomBytes(IV);
  const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]);
}

function open(key: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV)).setAAD(aad);
  decipher.setAuthTag(sealed.subarray(IV, IV + TAG));
  return Buffer.concat([decipher.update(sealed.subarray(IV + TAG)), decipher.final()]);
}

export class TestEnvelopeSealer extends EnvelopeSealer {
  /** How many seals this process made (a test reads it through its own instance). */
  seals = 0;

  /** `delayMs` stretches each seal (the product's takes TPM-free milliseconds too): a fan-out a fault suite can interrupt half-way. */
  constructor(
    private readonly fleetKey: Buffer,
    private readonly delayMs = 0,
  ) {
    super();
  }

  async seal(input: SealInput): Promise<Sealed> {
    this.seals += 1;
    if (this.delayMs > 0) {
      await new Promise((resolve) => setTimeout(resolve, this.delayMs));
    }
    const contentKey = randomBytes(KEY);
    const wrapped = seal(testMachineKey(this.fleetKey, input.machine.id), contentKey, Buffer.from(input.deliveryId));
    const body = seal(contentKey, input.payload, Buffer.from(`${input.deliveryId}\0${input.secretVersion}`));
    const envelope = Buffer.concat([MAGIC, wrapped, body]);
    const ackProof = ackProofOf(contentKey, input.deliveryId);
    contentKey.fill(0);
    return { envelope, ackProof };
  }
}

/** The simulated agent's unwrap: the payload and the ack proof; throws when the envelope is not this machine's. */
export function openTestEnvelope(fleetKey: Buffer, machineId: string, deliveryId: string, secretVersion: number, envelope: Buffer): { payload: Buffer; ackProof: Buffer } {
  if (!envelope.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new Error('not a test envelope');
  }
  const wrappedLength = IV + TAG + KEY;
  const contentKey = open(testMachineKey(fleetKey, machineId), envelope.subarray(MAGIC.length, MAGIC.length + wrappedLength), Buffer.from(deliveryId));
  const payload = open(contentKey, envelope.subarray(MAGIC.length + wrappedLength), Buffer.from(`${deliveryId}\0${secretVersion}`));
  return { payload, ackProof: ackProofOf(contentKey, deliveryId) };
}
