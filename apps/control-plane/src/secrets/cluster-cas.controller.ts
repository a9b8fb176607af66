import { Body, Controller, Get, Header, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiBody, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiProduces, ApiTags } from '@nestjs/swagger';
import type { ClusterCaView } from '@rackseal/api-contracts';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { ClusterCas } from '@rackseal/secrets';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { CA_KIND_DESCRIPTION, ClusterCaViewDto, ImportClusterCaDto } from './secrets.dto';

/**
 * The cluster CAs (issue 13 item 4): import (`secrets:write`: whoever may create secrets already
 * mints certificates from these CAs), show and download the certificate (`secrets:read`). The key
 * never leaves: it is sealed on import and opened only to sign.
 */
@ApiTags('secrets')
@ApiBearerAuth()
@Controller('v1/cas/:kind')
export class ClusterCasController {
  constructor(private readonly cas: ClusterCas) {}

  @Post()
  @HttpCode(201)
  @RequireScope('secrets:write')
  @ApiParam({ name: 'kind', description: CA_KIND_DESCRIPTION })
  @ApiBody({ type: ImportClusterCaDto })
  @ApiOkResponse({ type: ClusterCaViewDto })
  @ApiBadRequestResponse({ description: 'an unknown kind (ca.invalid-kind), or a certificate that is not one CA certificate valid now or a key that is not its key (ca.invalid); audited, nothing written' })
  @ApiConflictResponse({ description: 'the kind has a CA already (ca.exists); audited' })
  // `unknown`: libs/secrets checks the body, so that a refusal is audited and never echoes the key.
  import(@Param('kind') kind: string, @Body() body: unknown, @Principal() principal: TokenPrincipal): Promise<ClusterCaView<Date>> {
    const fields = typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : {};
    return this.cas.import(kind, fields.certificate, fields.privateKey, actorOf(principal));
  }

  @Get()
  @RequireScope('secrets:read')
  @ApiParam({ name: 'kind', description: CA_KIND_DESCRIPTION })
  @ApiOkResponse({ type: ClusterCaViewDto })
  @ApiBadRequestResponse({ description: 'an unknown kind (ca.invalid-kind)' })
  @ApiNotFoundResponse({ description: 'no CA of this kind yet (ca.not-found)' })
  show(@Param('kind') kind: string): Promise<ClusterCaView<Date>> {
    return this.cas.show(kind);
  }

  /** The CA certificate as PEM (RFC 7468), to give to whatever must trust what the CA issues. */
  @Get('certificate')
  @RequireScope('secrets:read')
  // RFC 8555 §9.1's media type for PEM certificates.
  @Header('Content-Type', 'application/pem-certificate-chain')
  @ApiProduces('application/pem-certificate-chain')
  @ApiParam({ name: 'kind', description: CA_KIND_DESCRIPTION })
  @ApiOkResponse({ description: 'the CA certificate, PEM', schema: { type: 'string' } })
  @ApiBadRequestResponse({ description: 'an unknown kind (ca.invalid-kind)' })
  @ApiNotFoundResponse({ description: 'no CA of this kind yet (ca.not-found)' })
  certificate(@Param('kind') kind: string): Promise<string> {
    return this.cas.certificatePem(kind);
  }
}
