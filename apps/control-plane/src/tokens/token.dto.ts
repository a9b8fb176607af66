import { ApiProperty } from '@nestjs/swagger';
import { ALL_SCOPES, type Scope, TOKEN_NAME_MAX_LENGTH } from '@rackseal/api-tokens';
import { ArrayMaxSize, ArrayMinSize, ArrayUnique, IsArray, IsIn, IsString, Length, Matches } from 'class-validator';
import { IsPrintableText } from '../http/validators';

export class CreateTokenDto {
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

export class IssuedTokenDto {
  @ApiProperty()
  id: string;

  @ApiProperty({ description: 'Shown once. Only its SHA-256 is stored.' })
  token: string;

  @ApiProperty()
  name: string;

  @ApiProperty({ enum: ALL_SCOPES, isArray: true })
  scopes: Scope[];
}

export class TokenSummaryDto {
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
