import { Inject, Injectable } from '@nestjs/common';
import {
  GROUP_PATTERN,
  GROUP_RULE,
  type GroupAttestationInterval,
  type GroupAttestationIntervalRemoval,
  MAX_ATTESTATION_INTERVAL_SECONDS,
  MIN_ATTESTATION_INTERVAL_SECONDS,
} from '@rackseal/api-contracts';
import { AuditLog } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import { Clock } from '@rackseal/platform';
import { DataSource } from 'typeorm';
import { GroupIntervalError } from './machine-errors';
import { GroupIntervalsRepository, type StoredGroupInterval } from './group-intervals.repository';

/**
 * Each machine group's attestation interval (issue 12 item 7): show, set, and remove (back to the
 * fleet default, MACHINE_ATTESTATION_INTERVAL_MS). A change is one transaction holding the group's
 * lock: the row and its audit record (`policy.interval-set`, `policy.interval-removed`, beside the
 * PCR policy's `policy.*` records, subject `group:<name>`, with the previous value). A bad group name
 * or an interval out of bounds is refused before anything is read, and not audited (as a policy
 * body parsePcrPolicy refuses). Removing a group's interval when it has none writes nothing.
 */
@Injectable()
export class GroupAttestationIntervals {
  private readonly fleetDefaultMs: number;

  constructor(
    private readonly dataSource: DataSource,
    private readonly intervals: GroupIntervalsRepository,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    @Inject(RACKSEAL_CONFIG) config: RacksealConfig,
  ) {
    this.fleetDefaultMs = config.machines.attestationIntervalMs;
  }

  /** The fleet default (MACHINE_ATTESTATION_INTERVAL_MS), what a group without its own interval is held to. */
  get fleetIntervalMs(): number {
    return this.fleetDefaultMs;
  }

  /** The interval a machine of `group` must attest within, in ms: its group's own, else the fleet default. */
  async intervalMsFor(group: string | null): Promise<number> {
    const own = group === null ? undefined : await this.intervals.get(group);
    return own === undefined ? this.fleetDefaultMs : own.intervalSeconds * 1000;
  }

  async show(group: string): Promise<GroupAttestationInterval<Date>> {
    checkGroup(group);
    return this.view(group, await this.intervals.get(group));
  }

  async set(group: string, intervalSeconds: number, actor: string): Promise<GroupAttestationInterval<Date>> {
    checkGroup(group);
    checkInterval(intervalSeconds);
    return this.dataSource.transaction(async (m) => {
      await this.intervals.lock(group, m);
      const previous = await this.intervals.get(group, m);
      const stored = await this.intervals.put(group, intervalSeconds, actor, this.clock.now(), m);
      await this.audit.append(
        {
          actor,
          action: 'policy.interval-set',
          subject: `group:${group}`,
          outcome: 'success',
          // previous null: the group was held to the fleet default.
          details: { group, attestationIntervalSeconds: intervalSeconds, previousSeconds: previous?.intervalSeconds ?? null, fleetDefaultSeconds: this.fleetDefaultMs / 1000 },
        },
        m,
      );
      return this.view(group, stored);
    });
  }

  async remove(group: string, actor: string): Promise<GroupAttestationIntervalRemoval<Date>> {
    checkGroup(group);
    return this.dataSource.transaction(async (m) => {
      await this.intervals.lock(group, m);
      const removed = await this.intervals.remove(group, m);
      if (removed !== undefined) {
        await this.audit.append(
          {
            actor,
            action: 'policy.interval-removed',
            subject: `group:${group}`,
            outcome: 'success',
            details: { group, previousSeconds: removed.intervalSeconds, fleetDefaultSeconds: this.fleetDefaultMs / 1000 },
          },
          m,
        );
      }
      return { changed: removed !== undefined, interval: this.view(group, undefined) };
    });
  }

  private view(group: string, own: StoredGroupInterval | undefined): GroupAttestationInterval<Date> {
    const fleetDefaultSeconds = this.fleetDefaultMs / 1000;
    return own === undefined
      ? { group, attestationIntervalSeconds: fleetDefaultSeconds, source: 'fleet-default', fleetDefaultSeconds, updatedAt: null, updatedBy: null }
      : { group, attestationIntervalSeconds: own.intervalSeconds, source: 'group', fleetDefaultSeconds, updatedAt: own.updatedAt, updatedBy: own.updatedBy };
  }
}

function checkGroup(group: string): void {
  if (!GROUP_PATTERN.test(group)) {
    throw new GroupIntervalError('machine.invalid-group', `${JSON.stringify(group.slice(0, 70))}: ${GROUP_RULE}`);
  }
}

function checkInterval(seconds: number): void {
  if (!Number.isSafeInteger(seconds) || seconds < MIN_ATTESTATION_INTERVAL_SECONDS || seconds > MAX_ATTESTATION_INTERVAL_SECONDS) {
    throw new GroupIntervalError(
      'machine.invalid-interval',
      `attestationIntervalSeconds must be a whole number of seconds from ${MIN_ATTESTATION_INTERVAL_SECONDS} (10 s) to ${MAX_ATTESTATION_INTERVAL_SECONDS} (31 days), not ${String(seconds).slice(0, 40)}`,
    );
  }
}
