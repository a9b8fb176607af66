import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiBadRequestResponse, ApiConflictResponse, ApiCreatedResponse, ApiNotFoundResponse, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { KeyCertification } from '@rackseal/attestation';
import { type CertifiedKeyResponse, CURRENT_KEY_ROUTE, KEY_CHALLENGES_ROUTE, type KeyChallengeResponse, KEYS_ROUTE, nodeApiPath } from '@rackseal/node-api-contracts';
import { NodeAuthenticated, NodeCallerOf } from '../auth/auth.decorators';
import type { NodeCaller } from '../auth/node-request.guard';
import { CertifiedKeyResponseDto, CertifyKeyDto, KeyChallengeResponseDto } from './keys.dto';

/**
 * Key certification (issue 13 item 1, docs/architecture.md §4.4), signed with the node credential:
 * a challenge, the certification of a TPM-resident decrypt key by the AK of the machine's current
 * attestation over it, and the machine's live key. Refusals carry `key.*` codes (libs/attestation
 * README), each audited `key.refused`.
 */
@ApiTags('node: keys')
@NodeAuthenticated()
@Controller(nodeApiPath(''))
export class KeysController {
  constructor(private readonly keys: KeyCertification) {}

  @Post(KEY_CHALLENGES_ROUTE)
  @ApiCreatedResponse({ type: KeyChallengeResponseDto, description: 'a single-use nonce for TPM2_Certify and its deadline' })
  challenge(@NodeCallerOf() caller: NodeCaller): Promise<KeyChallengeResponse> {
    return this.keys.challenge(caller);
  }

  @Post(KEYS_ROUTE)
  @ApiCreatedResponse({ type: CertifiedKeyResponseDto, description: "the key is the machine's certified key; the previous one (if any) is retired" })
  @ApiBadRequestResponse({ description: 'key.malformed, key.not-certify, key.wrong-ak, key.name-mismatch, key.nonce-unknown, key.attributes, key.weak' })
  @ApiConflictResponse({ description: 'key.nonce-reused, key.nonce-expired, key.no-credential' })
  certify(@NodeCallerOf() caller: NodeCaller, @Body() body: CertifyKeyDto): Promise<CertifiedKeyResponse> {
    return this.keys.certify(caller, body);
  }

  @Get(CURRENT_KEY_ROUTE)
  @HttpCode(200)
  @ApiOkResponse({ type: CertifiedKeyResponseDto, description: "the machine's live certified key" })
  @ApiNotFoundResponse({ description: 'key.none: the machine has no live certified key' })
  current(@NodeCallerOf() caller: NodeCaller): Promise<CertifiedKeyResponse> {
    return this.keys.current(caller);
  }
}
