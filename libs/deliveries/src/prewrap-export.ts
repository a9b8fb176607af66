import { Injectable } from '@nestjs/common';
import { DomainError } from '@rackseal/api-contracts';
import { PcrApprovals, PcrPoliciesRepository } from '@rackseal/attestation';
import { AuditLog } from '@rackseal/audit';
import { type Machine, MachineNotFoundError, MachinesRepository, parseMachineRef } from '@rackseal/machines';
import { type ApprovalsResponse, type MachinePrewraps, PREWRAPPED_DISK_KEY_TYPE, type PrewrappedDiskKey } from '@rackseal/node-api-contracts';
import { parseEnvelope } from '@rackseal/wrapping';
import { DataSource } from 'typeorm';
import { DeliveriesRepository } from './deliveries.repository';
import { DeliveryError } from './delivery-errors';

/**
 * GET /v1/machines/:ref/prewrapped (issue 14 item 6): a machine's pre-wrapped disk keys as the
 * provisioning files the first boot formats its disks from, each with the group's approvals of the
 * envelope's epoch. Envelopes only, never a key in clear. Every answer and every refusal is audited
 * `delivery.prewrap-exported` (ids, secret names, the refusal's code); a refusal says why there is
 * nothing to export: the machine revoked or attested already (its disk key reaches it through the
 * mailbox), its group without a PCR policy, its row without an EK certificate, no disk secret, or a
 * pre-wrap not sealed yet (`delivery.prewrap-pending`: ask again shortly).
 */
@Injectable()
export class PrewrapExport {
  constructor(
    private readonly dataSource: DataSource,
    private readonly deliveries: DeliveriesRepository,
    private readonly machines: MachinesRepository,
    private readonly policies: PcrPoliciesRepository,
    private readonly approvals: PcrApprovals,
    private readonly audit: AuditLog,
  ) {}

  async export(ref: string, actor: string): Promise<MachinePrewraps> {
    const machine = await this.machines.findByRef(parseMachineRef(ref));
    if (machine === undefined) {
      throw new MachineNotFoundError(ref);
    }
    try {
      const answer = await this.answer(machine);
      await this.record(actor, machine, 'success', { prewraps: answer.prewraps.length, deliveryIds: answer.prewraps.map((p) => p.deliveryId), names: answer.prewraps.map((p) => p.secret) });
      return answer;
    } catch (error) {
      if (error instanceof DomainError) {
        await this.record(actor, machine, 'refused', { code: error.code });
      }
      throw error;
    }
  }

  private async answer(machine: Machine): Promise<MachinePrewraps> {
    const rows = await this.deliveries.prewrapsOf(machine.id);
    const ready = rows.filter((r) => r.state === 'prewrapped');
    if (ready.length === 0) {
      throw await this.nothing(machine, rows.length > 0);
    }
    const current = await this.approvals.show(machine.group!);
    const approvals: ApprovalsResponse = { ...current, approvals: current.approvals.map(({ label, approvedPolicy, signature }) => ({ label, approvedPolicy, signature })) };
    const prewraps: PrewrappedDiskKey[] = [];
    for (const row of ready) {
      const envelope = row.envelope!;
      const transport = parseEnvelope(envelope).transport;
      const epoch = transport.binding === 'pcr-sealed' ? transport.epoch : undefined;
      if (epoch !== current.epoch) {
        // Sealed at an epoch since withdrawn: its re-wrap is planned with the bump; nothing that opens is exported.
        throw new DeliveryError('delivery.prewrap-pending', `the pre-wrap of ${row.secretName} for machine ${machine.serial} is being sealed again at the group's new approval epoch: ask again shortly`);
      }
      prewraps.push({
        format: 1,
        type: PREWRAPPED_DISK_KEY_TYPE,
        machine: { serial: machine.serial, ekPubHash: machine.ekPubHash },
        secret: row.secretName,
        version: row.version,
        generation: row.version,
        deliveryId: row.id,
        envelope: envelope.toString('base64'),
        approvals,
      });
    }
    return { machine: { id: machine.id, serial: machine.serial, group: machine.group, ekPubHash: machine.ekPubHash }, prewraps };
  }

  /** Why a machine has no pre-wrap to export. */
  private async nothing(machine: Machine, pending: boolean): Promise<DeliveryError> {
    const who = `machine ${machine.serial}`;
    if (pending) {
      return new DeliveryError('delivery.prewrap-pending', `${who}: its disk keys are being pre-wrapped by the worker: ask again shortly`);
    }
    if (machine.state === 'revoked') {
      return new DeliveryError('delivery.no-prewrap', `${who} is revoked: nothing is wrapped to it`);
    }
    if (machine.state === 'attested') {
      return new DeliveryError('delivery.no-prewrap', `${who} is attested: its disk keys reach it through its mailbox (rackseal-agent run)`);
    }
    if (machine.state !== 'imported') {
      return new DeliveryError('delivery.no-prewrap', `${who} is ${machine.state}: it has talked to the control plane, so nothing is exported for it any more; its pre-wraps become its deliveries once it attests`);
    }
    if (machine.group === null || (await this.policies.get(machine.group)) === undefined) {
      return new DeliveryError('delivery.no-prewrap', `${who}: its group ${machine.group ?? '(none)'} has no PCR policy, so nothing approves a boot state to seal its disk key to (rackseal policy set GROUP --file …, then import again or rotate the disk secret)`);
    }
    if ((await this.machines.ekCertificateOf(machine.id)) === undefined) {
      return new DeliveryError('delivery.no-prewrap', `${who} was imported with its ek_pub_hash only: a hash is no key to wrap to; import its ek_cert`);
    }
    return new DeliveryError('delivery.no-prewrap', `${who}: no pcr-sealed disk secret targets it (rackseal secrets create NAME --kind disk --binding pcr-sealed --group ${machine.group})`);
  }

  private async record(actor: string, machine: Machine, outcome: 'success' | 'refused', details: Record<string, unknown>): Promise<void> {
    await this.dataSource.transaction((m) =>
      this.audit.append({ actor, action: 'delivery.prewrap-exported', subject: `machine:${machine.id}`, outcome, details: { machineId: machine.id, serial: machine.serial, ...details } as never }, m),
    );
  }
}
