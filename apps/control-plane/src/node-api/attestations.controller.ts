import { Body, Controller, HttpCode, Ip, Param, Post } from '@nestjs/common';
import { ApiBadRequestResponse, ApiConflictResponse, ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { AttestationService } from '@rackseal/attestation';
import { ATTESTATIONS_ROUTE, type FinishAttestationResponse, nodeApiPath, type StartAttestationResponse } from '@rackseal/node-api-contracts';
import { NodeApi } from '../auth/auth.decorators';
import { AttestationMetrics } from './attestation-metrics';
import { FinishAttestationDto, FinishAttestationResponseDto, StartAttestationDto, StartAttestationResponseDto } from './attestation.dto';

/**
 * The enrollment protocol (issue 12, docs/architecture.md §4.3): a machine's agent starts a
 * registration and finishes it with the activated credential's proof and a quote. No operator
 * token: the protocol authenticates the machine. Refusals carry `attestation.*` codes
 * (libs/attestation README). The client's address bounds the audit records of refusals that name
 * no machine (AttestationService), per source.
 */
@ApiTags('node: attestation')
@NodeApi()
@Controller(nodeApiPath(ATTESTATIONS_ROUTE))
export class AttestationsController {
  constructor(
    private readonly attestation: AttestationService,
    private readonly outcomes: AttestationMetrics,
  ) {}

  @Post()
  @ApiCreatedResponse({ type: StartAttestationResponseDto, description: 'a registration: the credential challenge, nonce, selection and deadline' })
  @ApiBadRequestResponse({ description: 'attestation.malformed, attestation.ek-untrusted, attestation.ek-mismatch, attestation.ak-rejected' })
  @ApiNotFoundResponse({ description: 'attestation.unknown-ek: no machine of the inventory has this EK' })
  @ApiConflictResponse({ description: 'attestation.machine-revoked' })
  start(@Body() body: StartAttestationDto, @Ip() source: string | undefined): Promise<StartAttestationResponse> {
    return this.outcomes.count('start', () => this.attestation.start(body, { source }));
  }

  @Post(':id/finish')
  @HttpCode(200)
  @ApiParam({ name: 'id', description: 'the registrationId of the start answer' })
  @ApiOkResponse({ type: FinishAttestationResponseDto, description: 'the machine is attested' })
  @ApiBadRequestResponse({
    description:
      'attestation.malformed, attestation.activation-failed, attestation.quote-invalid, attestation.nonce-mismatch, attestation.selection-mismatch, attestation.pcr-values-mismatch, attestation.event-log-mismatch',
  })
  @ApiNotFoundResponse({ description: 'attestation.unknown-registration' })
  @ApiConflictResponse({
    description: 'attestation.registration-finished, attestation.registration-expired, attestation.machine-revoked; attestation.policy-mismatch or attestation.no-policy (the machine is quarantined; the message lists why)',
  })
  finish(@Param('id') id: string, @Body() body: FinishAttestationDto, @Ip() source: string | undefined): Promise<FinishAttestationResponse> {
    return this.outcomes.count('finish', () => this.attestation.finish(id, body, { source }));
  }
}
