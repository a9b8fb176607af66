import { Injectable } from '@nestjs/common';
import { PcrApprovals } from '@rackseal/attestation';
import { unmarshalTpmtPublic } from '@rackseal/tpm2';
import { wrapDeliveryToApprovedPcrPolicy, wrapDeliveryToCertifiedKey, WrappingError } from '@rackseal/wrapping';
import { DeliveryError } from './delivery-errors';
import { EnvelopeSealer, type Sealed, type SealInput } from './envelope-sealer';

/**
 * The product's EnvelopeSealer: libs/wrapping's envelopes (docs/decisions.md "Wrapping and the
 * envelope format"), addressed to the delivery id and the secret's version number, with the ack
 * proof computed inside the wrap from the content key (which never reaches this class).
 *
 * - certified-key: to the machine's live certified decrypt key, its TPMT_PUBLIC as certified
 *   (TPM 2.0 Part 2 §12.2.4);
 * - pcr-sealed: to its EK (the registration behind its live node credential) under
 *   PolicyAuthorize(signing key, policyRef(group, epoch)), the group's sealing target read at each
 *   seal (PcrApprovals.sealingTarget), so a delivery wrapped after an epoch bump is of the new epoch.
 *
 * A key the wrapping library refuses (RecipientKeyError), a payload it cannot carry, is
 * `delivery.unsealable`: no attempt can change it, the delivery fails at once with that code.
 */
@Injectable()
export class WrappingEnvelopeSealer extends EnvelopeSealer {
  constructor(private readonly approvals: PcrApprovals) {
    super();
  }

  async seal(input: SealInput): Promise<Sealed> {
    const address = { deliveryId: input.deliveryId, secretVersion: input.secretVersion };
    const machine = input.machine;
    if (input.binding === 'certified-key') {
      if (machine.certifiedKeyPublic === undefined) {
        throw new DeliveryError('delivery.no-certified-key', `machine ${machine.id} has no live certified key`);
      }
      const key = machine.certifiedKeyPublic;
      return unsealable(machine.id, () => wrapDeliveryToCertifiedKey(unmarshalTpmtPublic(key), input.payload, address));
    }
    if (machine.group === null) {
      // The approvals that open a pcr-sealed envelope are a group's: a machine in no group has none.
      throw new DeliveryError('delivery.no-group', `machine ${machine.id} is in no group: a pcr-sealed envelope opens only with its group's PCR approvals`);
    }
    const target = await this.approvals.sealingTarget(machine.group);
    return unsealable(machine.id, () =>
      wrapDeliveryToApprovedPcrPolicy({ ekPublic: unmarshalTpmtPublic(machine.ekPublic), group: target.group, epoch: target.epoch, signingKeyName: target.signingKeyName }, input.payload, address),
    );
  }
}

function unsealable(machineId: string, wrap: () => Sealed): Sealed {
  try {
    return wrap();
  } catch (error) {
    if (error instanceof WrappingError || (error as Error).name === 'TpmParseError') {
      throw new DeliveryError('delivery.unsealable', `the envelope for machine ${machineId} cannot be made: ${(error as Error).message}`);
    }
    throw error;
  }
}
