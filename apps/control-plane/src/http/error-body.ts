import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** The single error shape of the HTTP API. */
export class ErrorBody {
  @ApiProperty({ example: 400 })
  statusCode: number;

  @ApiProperty({ example: 'Bad Request' })
  error: string;

  @ApiProperty({ example: 'limit must not be greater than 1000', oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] })
  message: string | string[];

  @ApiPropertyOptional({ description: 'Request id, also in the X-Request-Id header and in every log line of the request.' })
  requestId?: string;

  @ApiPropertyOptional({ description: 'Only on 500: quote it to an operator; the logs hold the details under this id.' })
  errorId?: string;
}
