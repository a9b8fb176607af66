import { ApiProperty } from '@nestjs/swagger';
import type { CreateSessionRequest, OperatorSession } from '@rackseal/api-contracts';
import { IsString, MaxLength } from 'class-validator';

export class CreateSessionDto implements CreateSessionRequest {
  @ApiProperty({ description: 'an operator token (rks_…); the session acts as it, with its scopes, until it expires or the token is revoked' })
  @IsString()
  @MaxLength(200)
  token: string;
}

export class OperatorSessionDto implements OperatorSession<Date> {
  @ApiProperty({ format: 'uuid' }) tokenId: string;
  @ApiProperty() tokenName: string;
  @ApiProperty({ type: String, isArray: true, description: 'the token\'s scopes now' }) scopes: string[];
  @ApiProperty({ description: 'the session ends then, or sooner when its token is revoked or it signs out' }) expiresAt: Date;
  @ApiProperty({ description: 'send it in X-CSRF-Token with every POST, PUT, PATCH or DELETE made with the session cookie' }) csrfToken: string;
}
