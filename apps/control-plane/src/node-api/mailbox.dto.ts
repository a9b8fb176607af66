import { ApiExtraModels, ApiProperty, getSchemaPath } from '@nestjs/swagger';
import {
  ACK_PROOF_BYTES,
  type AckDeliveryRequest,
  type AckDeliveryResponse,
  type CarriedAck,
  type CarriedAckAnswer,
  type CarriedAckRefusal,
  MAILBOX_MAX_CARRIED_ACKS,
  type MailboxDelivery,
  type MailboxPollRequest,
  type MailboxPollResponse,
  type MailboxResponse,
} from '@rackseal/node-api-contracts';

/* Documentation of the mailbox's wire shapes (libs/node-api-contracts mailbox.ts); libs/deliveries validates the bodies. */

export class MailboxDeliveryDto implements MailboxDelivery {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ description: 'the secret\'s name' }) secret: string;
  @ApiProperty({ enum: ['tls', 'disk', 'opaque', 'kubelet-client'] }) kind: MailboxDelivery['kind'];
  @ApiProperty({ type: 'integer', minimum: 1 }) version: number;
  @ApiProperty({ enum: ['certified-key', 'pcr-sealed'] }) binding: MailboxDelivery['binding'];
  @ApiProperty({ format: 'byte', description: 'the sealed envelope, base64' }) envelope: string;
}

export class MailboxResponseDto implements MailboxResponse {
  @ApiProperty({ type: [MailboxDeliveryDto] }) deliveries: MailboxDeliveryDto[];
}

export class AckDeliveryDto implements AckDeliveryRequest {
  @ApiProperty({ format: 'byte', description: `HMAC-SHA256(content key, "rackseal ack v1" ‖ delivery id): ${ACK_PROOF_BYTES} bytes, base64` }) proof: string;
}

export class AckDeliveryResponseDto implements AckDeliveryResponse {
  @ApiProperty({ format: 'uuid' }) deliveryId: string;
  @ApiProperty({ enum: ['acked'] }) state: 'acked';
  @ApiProperty({ description: 'true when the delivery was acked already: nothing changed' }) alreadyAcked: boolean;
  @ApiProperty({ format: 'date-time' }) ackedAt: string;
}

export class CarriedAckDto implements CarriedAck {
  @ApiProperty({ format: 'uuid' }) id: string;
  @ApiProperty({ format: 'byte', description: `as AckDeliveryRequest's proof: ${ACK_PROOF_BYTES} bytes, base64` }) proof: string;
}

export class MailboxPollDto implements MailboxPollRequest {
  @ApiProperty({ type: [CarriedAckDto], maxItems: MAILBOX_MAX_CARRIED_ACKS, description: 'the acks of the deliveries installed since the last poll; none for a plain poll' }) acks: CarriedAckDto[];
}

class CarriedAckRefusalReasonDto {
  @ApiProperty({ description: 'the code the ack route would have answered: delivery.not-found, delivery.not-ready, delivery.bad-proof, delivery.invalid' }) code: string;
  @ApiProperty() message: string;
}

export class CarriedAckRefusalDto implements CarriedAckRefusal {
  @ApiProperty({ type: CarriedAckRefusalReasonDto }) refused: CarriedAckRefusalReasonDto;
}

@ApiExtraModels(AckDeliveryResponseDto, CarriedAckRefusalDto)
export class MailboxPollResponseDto implements MailboxPollResponse {
  @ApiProperty({ type: [MailboxDeliveryDto] }) deliveries: MailboxDeliveryDto[];
  @ApiProperty({
    type: 'array',
    items: { oneOf: [{ $ref: getSchemaPath(AckDeliveryResponseDto) }, { $ref: getSchemaPath(CarriedAckRefusalDto) }] },
    description: 'one answer per carried ack, in the request\'s order',
  })
  acks: CarriedAckAnswer[];
}
