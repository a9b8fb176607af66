import { Controller, Get } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { REFUSAL_SCAN_RECORDS, REFUSAL_WINDOW_SECONDS } from '@rackseal/api-contracts';
import { AuditError, AuditLog } from '@rackseal/audit';
import { DeliveriesRepository } from '@rackseal/deliveries';
import { GroupAttestationIntervals, MachinesRepository } from '@rackseal/machines';
import { Clock } from '@rackseal/platform';
import { RequireScope } from '../auth/auth.decorators';
import { FleetOverviewDto } from './fleet.dto';

/**
 * The dashboard's overview in one call (issue 16): counts only, read through the owners the /metrics
 * gauges use (machines, deliveries, audit), so the page and the alerts agree. `inventory:read`: the
 * numbers say how the fleet is, nothing about a secret or a record's content.
 */
@ApiTags('fleet')
@ApiBearerAuth()
@Controller('v1/fleet')
export class FleetController {
  constructor(
    private readonly machines: MachinesRepository,
    private readonly intervals: GroupAttestationIntervals,
    private readonly deliveries: DeliveriesRepository,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  @Get('overview')
  @RequireScope('inventory:read')
  @ApiOkResponse({ type: FleetOverviewDto })
  async overview(): Promise<FleetOverviewDto> {
    const at = this.clock.now();
    const since = new Date(at.getTime() - REFUSAL_WINDOW_SECONDS * 1000);
    const [machinesByState, overdue, deliveriesByState, refusals, sequencer, checkpoint] = await Promise.all([
      this.machines.countByState(),
      this.machines.countOverdue(at, this.intervals.fleetIntervalMs),
      this.deliveries.countAllByState(),
      this.audit.refusalCounts(since, REFUSAL_SCAN_RECORDS),
      this.audit.sequencerStatus(),
      this.latestCheckpoint(),
    ]);
    return {
      at,
      machinesByState: { ...machinesByState },
      overdue: Object.values(overdue.byState).reduce((sum, n) => sum + n, 0),
      deliveriesByState: { ...deliveriesByState },
      refusals: { windowSeconds: REFUSAL_WINDOW_SECONDS, scannedRecords: refusals.scanned, byReason: refusals.byReason },
      audit: { pending: sequencer.pending, oldestPendingAgeMs: sequencer.oldestPendingAgeMs, unsigned: sequencer.unsigned, treeSize: sequencer.treeSize, latestCheckpoint: checkpoint },
    };
  }

  /** Null until the sequencer signs its first checkpoint (audit.no-checkpoint). */
  private async latestCheckpoint(): Promise<FleetOverviewDto['audit']['latestCheckpoint']> {
    try {
      const c = await this.audit.latestCheckpoint();
      return { treeSize: c.treeSize, signedAt: c.signedAt, rootHash: c.rootHash.toString('hex') };
    } catch (error) {
      if (error instanceof AuditError && error.code === 'audit.no-checkpoint') {
        return null;
      }
      throw error;
    }
  }
}
