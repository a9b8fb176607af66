import { ApiProperty } from '@nestjs/swagger';
import type { CallingMachineState, NodeSelfResponse } from '@rackseal/node-api-contracts';

export class NodeSelfResponseDto implements NodeSelfResponse {
  @ApiProperty({ format: 'uuid' })
  machineId!: string;

  @ApiProperty()
  serial!: string;

  @ApiProperty({ type: String, nullable: true, description: 'The inventory group (its PCR policy), null when none.' })
  group!: string | null;

  @ApiProperty({ enum: ['attested', 'attesting', 'quarantined'], description: 'attesting: a re-attestation is open; the credential still authenticates until it ends. quarantined: only this route takes its credential (reattest says when to try again).' })
  state!: CallingMachineState;

  @ApiProperty({ type: String, format: 'date-time', nullable: true })
  lastAttestedAt!: string | null;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'lastAttestedAt + the group\'s attestation interval (PUT /v1/groups/:group/interval), MACHINE_ATTESTATION_INTERVAL_MS for a group without its own.' })
  nextAttestationDue!: string | null;

  @ApiProperty({ description: 'Re-attest now: the next attestation is due, or an operator asked (POST /v1/machines/:ref/reattest).' })
  reattest!: boolean;
}
