import { Body, Controller, Delete, Get, HttpCode, Param, ParseUUIDPipe, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiNoContentResponse, ApiNotFoundResponse, ApiOkResponse, ApiParam, ApiTags } from '@nestjs/swagger';
import { ApiTokens, TokenNotFoundError, type TokenPrincipal } from '@rackseal/api-tokens';
import { actorOf, Principal, RequireScope } from '../auth/auth.decorators';
import { CreateTokenDto, IssuedTokenDto, TokenSummaryDto } from './token.dto';

/** Operator tokens: issue (shown once), list, revoke. Admin only; every change is audited. */
@ApiTags('tokens')
@ApiBearerAuth()
@RequireScope('admin')
@Controller('v1/tokens')
export class TokensController {
  constructor(private readonly tokens: ApiTokens) {}

  @Post()
  @ApiCreatedResponse({ type: IssuedTokenDto })
  async create(@Body() body: CreateTokenDto, @Principal() principal: TokenPrincipal): Promise<IssuedTokenDto> {
    // The DTO already refuses what the library refuses; a rule added there is a 400 all the same (token.invalid-*).
    const issued = await this.tokens.issue(body.name, body.scopes, actorOf(principal));
    return { ...issued, scopes: [...issued.scopes] };
  }

  @Get()
  @ApiOkResponse({ type: TokenSummaryDto, isArray: true })
  list(): Promise<TokenSummaryDto[]> {
    return this.tokens.list();
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ description: 'no active token with this id (unknown or already revoked)' })
  @ApiParam({ name: 'id', format: 'uuid', description: 'the token id `token list` shows (not the token itself)' })
  async revoke(@Param('id', new ParseUUIDPipe()) id: string, @Principal() principal: TokenPrincipal): Promise<void> {
    if (!(await this.tokens.revoke(id, actorOf(principal)))) {
      throw new TokenNotFoundError(id);
    }
  }
}
