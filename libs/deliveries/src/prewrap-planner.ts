import { Inject, Injectable } from '@nestjs/common';
import { PcrPoliciesRepository } from '@rackseal/attestation';
import { AuditLog } from '@rackseal/audit';
import { RACKSEAL_CONFIG, type RacksealConfig } from '@rackseal/config';
import type { InventoryImportHook } from '@rackseal/inventory';
import type { Machine } from '@rackseal/machines';
import { Clock, RandomSource } from '@rackseal/platform';
import type { EntityManager } from 'typeorm';
import { DeliveriesRepository, type DeliveryRound, type PrewrapCandidate } from './deliveries.repository';

/** Serials named in a refusal record; the rest are counted. */
const LISTED = 20;

/**
 * Plans pre-wrapped disk keys (issue 14 item 6, docs/decisions.md "Pre-wrapped disk keys"): for a
 * machine still `imported`, in a group with a PCR policy (so signed approvals exist to seal to),
 * whose inventory row has its EK certificate, one `prewrap-pending` delivery per `disk` secret bound
 * `pcr-sealed` that targets it — planned in the transaction of the decision (an import landing its
 * rows, a disk secret's new version) with its `delivery.prewrap` outbox row; the key is made and
 * wrapped by the job, never in the request. Machines that cannot have one are counted and named in
 * a `delivery.prewrap-refused` record: a group without a policy, a row with only its ek_pub_hash.
 * The machine's attestation turns its pre-wraps into its normal deliveries (`confirm`).
 */
@Injectable()
export class PrewrapPlanner implements InventoryImportHook {
  constructor(
    private readonly deliveries: DeliveriesRepository,
    private readonly policies: PcrPoliciesRepository,
    private readonly audit: AuditLog,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    @Inject(RACKSEAL_CONFIG) private readonly config: RacksealConfig,
  ) {}

  imported(event: { importId: string; actor: string }, m: EntityManager): Promise<void> {
    return this.plan({ importId: event.importId }, { trigger: 'inventory.imported', actor: event.actor, subject: `inventory-import:${event.importId}` }, m);
  }

  /** A disk secret's new version (create, rotate): pre-wraps of it for the target's machines not attested yet. */
  versionCreated(event: { secretName: string; versionId: string; actor: string }, m: EntityManager): Promise<void> {
    return this.plan({ versionId: event.versionId }, { trigger: 'secret.version', actor: event.actor, subject: `secret:${event.secretName}` }, m);
  }

  /** The machine attested: its pre-wraps become pending deliveries of the same version (the key its disk holds). */
  confirm(machine: Machine, m: EntityManager): Promise<DeliveryRound[]> {
    const at = this.clock.now();
    return this.deliveries.confirmPrewraps(machine.id, at, new Date(at.getTime() + this.config.deliveries.expiryMs), m);
  }

  private async plan(where: { importId: string } | { versionId: string }, about: { trigger: string; actor: string; subject: string }, m: EntityManager): Promise<void> {
    const candidates = await this.deliveries.prewrapCandidates(where, m);
    if (candidates.length === 0) {
      return;
    }
    const withPolicy = new Set<string>();
    for (const group of new Set(candidates.map((c) => c.group))) {
      if ((await this.policies.get(group, m)) !== undefined) {
        withPolicy.add(group);
      }
    }
    const noPolicy = candidates.filter((c) => !withPolicy.has(c.group));
    const noCertificate = candidates.filter((c) => withPolicy.has(c.group) && !c.hasEkCertificate);
    const fit = candidates.filter((c) => withPolicy.has(c.group) && c.hasEkCertificate);
    const at = this.clock.now();
    const planned = await this.deliveries.planPrewraps(
      fit.map((c) => ({ id: this.random.uuid(), secretId: c.secretId, versionId: c.versionId, machineId: c.machineId, binding: 'pcr-sealed' as const })),
      at,
      new Date(at.getTime() + this.config.deliveries.expiryMs),
      m,
    );
    if (planned.length > 0) {
      await this.audit.append(
        { actor: about.actor, action: 'delivery.prewrap-planned', subject: about.subject, outcome: 'success', details: { trigger: about.trigger, prewraps: planned.length } },
        m,
      );
    }
    if (noPolicy.length + noCertificate.length > 0) {
      await this.audit.append(
        {
          actor: about.actor,
          action: 'delivery.prewrap-refused',
          subject: about.subject,
          outcome: 'refused',
          details: {
            trigger: about.trigger,
            noPolicy: noPolicy.length,
            noPolicyGroups: [...new Set(noPolicy.map((c) => c.group))].slice(0, LISTED),
            noEkCertificate: noCertificate.length,
            noEkCertificateSerials: serials(noCertificate),
          },
        },
        m,
      );
    }
  }
}

function serials(candidates: readonly PrewrapCandidate[]): string[] {
  return [...new Set(candidates.map((c) => c.serial))].slice(0, LISTED);
}
