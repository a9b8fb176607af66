import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBadRequestResponse, ApiBearerAuth, ApiBody, ApiConflictResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { DEFAULT_PAGE_SIZE, type SecretVersionDetail, type SecretView } from '@rackseal/api-contracts';
import type { TokenPrincipal } from '@rackseal/api-tokens';
import { Secrets } from '@rackseal/secrets';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { CreateSecretDto, RotateSecretDto, SECRET_NAME_DESCRIPTION, SecretsQueryDto, SecretVersionDetailDto, SecretViewDto } from './secrets.dto';

/**
 * Secrets (issue 13 item 3): create, list, show, versions, rotate. Metadata only: no answer carries
 * material, which leaves the control plane only wrapped to a machine's TPM (issue 14). Reading needs
 * `secrets:read`, creating and rotating `secrets:write` (which implies it); every create and rotate,
 * refused ones included, is audited with names and ids only.
 */
@ApiTags('secrets')
@ApiBearerAuth()
@Controller('v1/secrets')
export class SecretsController {
  constructor(private readonly secrets: Secrets) {}

  @Post()
  @RequireScope('secrets:write')
  @ApiBody({ type: CreateSecretDto })
  @ApiOkResponse({ type: SecretViewDto, description: 'the secret and its version 1, with how many machines got material now' })
  @ApiBadRequestResponse({ description: 'a field refused, naming it (secret.invalid, secret.invalid-name, secret.invalid-binding, secret.invalid-san-template); audited, nothing written' })
  @ApiNotFoundResponse({ description: 'the target group has no machine (secret.unknown-group) or no such machine (secret.unknown-machine)' })
  @ApiConflictResponse({ description: 'the name is taken (secret.exists), no Kubernetes CA for kubelet-client (secret.no-kubernetes-ca), a machine of the target whose names do not fit or whose hostname another live machine has (secret.machine-unfit), the issuing CA expired (secret.ca-expired)' })
  @HttpCode(201)
  // `unknown`: libs/secrets validates the body as a whole, so that a refusal is audited.
  create(@Body() body: unknown, @Principal() principal: TokenPrincipal): Promise<SecretView<Date>> {
    return this.secrets.create(body, actorOf(principal));
  }

  @Get()
  @RequireScope('secrets:read')
  @ApiOkResponse({ type: SecretViewDto, isArray: true, description: 'Ordered by name; page with ?after=<last name>.' })
  list(@Query() query: SecretsQueryDto): Promise<SecretView<Date>[]> {
    return this.secrets.list(query.after, query.limit ?? DEFAULT_PAGE_SIZE);
  }

  @Get(':name')
  @RequireScope('secrets:read')
  @ApiParam({ name: 'name', description: SECRET_NAME_DESCRIPTION })
  @ApiOkResponse({ type: SecretViewDto })
  @ApiBadRequestResponse({ description: 'not a secret name (secret.invalid-name)' })
  @ApiNotFoundResponse({ description: 'no such secret (secret.not-found)' })
  show(@Param('name') name: string): Promise<SecretView<Date>> {
    return this.secrets.show(name);
  }

  @Get(':name/versions')
  @RequireScope('secrets:read')
  @ApiParam({ name: 'name', description: SECRET_NAME_DESCRIPTION })
  @ApiOkResponse({ type: SecretVersionDetailDto, isArray: true, description: 'newest first, each with the machines holding its material (no material)' })
  @ApiBadRequestResponse({ description: 'not a secret name (secret.invalid-name)' })
  @ApiNotFoundResponse({ description: 'no such secret (secret.not-found)' })
  versions(@Param('name') name: string): Promise<SecretVersionDetail<Date>[]> {
    return this.secrets.versions(name);
  }

  /** A new version: fresh material for every attested machine of the target (an opaque secret: the uploaded or a generated value). */
  @Post(':name/versions')
  @HttpCode(201)
  @RequireScope('secrets:write')
  @ApiParam({ name: 'name', description: SECRET_NAME_DESCRIPTION })
  @ApiBody({ type: RotateSecretDto, required: false })
  @ApiOkResponse({ type: SecretViewDto, description: 'the secret with its new latest version' })
  @ApiBadRequestResponse({ description: 'not a secret name, or a value for a kind that takes none (secret.invalid); audited' })
  @ApiNotFoundResponse({ description: 'no such secret (secret.not-found); audited' })
  @ApiConflictResponse({ description: 'a machine of the target whose names do not fit or whose hostname another live machine has (secret.machine-unfit), the Kubernetes CA gone (secret.no-kubernetes-ca), the issuing CA expired (secret.ca-expired); audited, nothing written' })
  rotate(@Param('name') name: string, @Body() body: unknown, @Principal() principal: TokenPrincipal): Promise<SecretView<Date>> {
    return this.secrets.rotate(name, body, actorOf(principal));
  }
}
