import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** The single error shape of the HTTP API. */
export class ErrorBody {
  @ApiProperty({ example: 400 })
  statusCode: number;

  @ApiProperty({ example: 'Bad Request' })
  error: string;

  @ApiProperty({
    example: 'vendor-ca.not-found',
    description:
      'Stable code to branch on (the message is for people): a library\'s code (`vendor-ca.not-found`, `inventory.busy`, … ' +
      'listed in each library\'s README) or a generic one: `request.invalid`, `auth.unauthenticated`, `auth.forbidden`, ' +
      '`route.not-found`, `request.timeout`, `request.conflict`, `request.too-large`, `request.unsupported-media-type`, `request.rate-limited`, ' +
      '`request.refused`, `database.unavailable`, `service.unavailable`, `internal`.',
  })
  code: string;

  @ApiProperty({ example: 'limit must not be greater than 1000', oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] })
  message: string | string[];

  @ApiPropertyOptional({ description: 'Request id, also in the X-Request-Id header and in every log line of the request.' })
  requestId?: string;

  @ApiPropertyOptional({ description: 'Only on 500: quote it to an operator; the logs hold the details under this id.' })
  errorId?: string;
}
