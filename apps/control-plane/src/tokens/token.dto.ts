import { ApiProperty } from '@nestjs/swagger';
import { ALL_SCOPES, type CreateTokenRequest, type IssuedToken, type Scope, TOKEN_NAME_MAX_LENGTH, type TokenSummary } from '@rackseal/api-contracts';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsArray, IsIn, IsString, Length, Matches } from 'class-validator';
import { IsPrintableText } from '../http/validators';

export class CreateTokenDto implements CreateTokenRequest {
  @ApiProperty({ example: 'inventory-importer', minLength: 1, maxLength: TOKEN_NAME_MAX_LENGTH, description: 'Shown to operators: no control characters.' })
  @IsString()
  @Length(1, TOKEN_NAME_MAX_LENGTH)
  @Matches(/\S/, { message: 'name must not be blank' })
  @IsPrintableText()
  name: string;

  @ApiProperty({ enum: ALL_SCOPES, isArray: true, example: ['inventory:write'] })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(ALL_SCOPES.length)
  @ArrayUnique()
  @IsIn(ALL_SCOPES, { each: true })
  scopes: Scope[];
}

export class IssuedTokenDto implements IssuedToken {
  @ApiProperty()
  id: string;

  @ApiProperty({ description: 'Shown once. Only its SHA-256 is stored.' })
  token: string;

  @ApiProperty()
  name: string;

  @ApiProperty({ enum: ALL_SCOPES, isArray: true })
  scopes: Scope[];
}

/** Dates here: Nest serialises them to ISO 8601, the wire shape TokenSummary declares. */
export class TokenSummaryDto implements TokenSummary<Date> {
  @ApiProperty()
  id: string;

  @ApiProperty()
  name: string;

  @ApiProperty({ isArray: true, type: String })
  scopes: string[];

  @ApiProperty()
  createdAt: Date;

  @ApiProperty()
  createdBy: string;

  @ApiProperty({ nullable: true, type: Date })
  revokedAt: Date | null;

  @ApiProperty({ nullable: true, type: Date })
  lastUsedAt: Date | null;
}
