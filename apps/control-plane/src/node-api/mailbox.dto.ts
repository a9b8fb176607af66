import { ApiProperty } from '@nestjs/swagger';
import { ACK_PROOF_BYTES, type AckDeliveryRequest, type AckDeliveryResponse, type MailboxDelivery, type MailboxResponse } from '@rackseal/node-api-contracts';

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
