import { Equals, IsIn, IsInt, IsUUID, Max, Min } from 'class-validator';

/** The rotation check's periodic run (one job scheduler for every worker). */
export class SecretRotationCheckPayload {
  @Equals('schedule')
  trigger: 'schedule';
}

export const ROTATION_REASONS = ['renew-before', 'rotate-every'] as const;

/** One due secret's scheduled new version, conditional on `fromVersion` still being its latest. */
export class SecretRotatePayload {
  @IsUUID()
  secretId: string;

  /** The latest version the check saw: the job makes version fromVersion + 1 or nothing. */
  @IsInt()
  @Min(1)
  @Max(2_147_483_647)
  fromVersion: number;

  @IsIn(ROTATION_REASONS)
  reason: (typeof ROTATION_REASONS)[number];
}
