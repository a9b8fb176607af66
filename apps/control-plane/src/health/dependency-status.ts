import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class DependencyStatus {
  @ApiProperty({ enum: ['up', 'down'] })
  status: 'up' | 'down';

  @ApiProperty({ description: 'Round trip of the probe in milliseconds.' })
  latencyMs: number;

  @ApiPropertyOptional({ description: 'Why the dependency is down (no credentials, no internals).' })
  reason?: string;
}

export class ReadinessReport {
  @ApiProperty({ enum: ['ready', 'unavailable'] })
  status: 'ready' | 'unavailable';

  @ApiProperty({ type: DependencyStatus })
  postgres: DependencyStatus;

  @ApiProperty({ type: DependencyStatus })
  redis: DependencyStatus;
}

export class LivenessReport {
  @ApiProperty({ enum: ['alive'] })
  status: 'alive';
}
