import { Injectable, Optional } from '@nestjs/common';
import type { SecretMaterialSummary, SecretVersionDetail, SecretVersionSummary, SecretView } from '@rackseal/api-contracts';
import { AuditLog } from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { MasterKeys, sealEnvelope } from '@rackseal/envelope';
import { type Machine, MachineRefError, MachinesRepository, parseMachineRef } from '@rackseal/machines';
import { Clock, RandomSource } from '@rackseal/platform';
import { DataSource, type EntityManager } from 'typeorm';
import { ClusterCasRepository } from './cluster-cas.repository';
import { secretVersionValueContext } from './sealed-columns';
import { SecretMaterials } from './secret-materials';
import { checkSecretName, describeRequest, parseCreateRequest, parseRotateRequest } from './secret-request';
import { SecretError } from './secret-errors';
import { attestedTargetsOf } from './secret-targets';
import { SecretVersionHook, type SecretVersionTrigger } from './secret-version-hook';
import { type StoredSecret, type StoredSecretVersion, SecretsRepository } from './secrets.repository';

/**
 * The operator's secret operations (issue 13 item 3): create, rotate (a new version), show, list,
 * versions. Create and rotate are one transaction each: the definition, the version, the material of
 * every attested machine of the target (machines attesting later get theirs through materialFor)
 * and the audit record (`secret.created`, `secret.rotated`: names, ids, counts — never material).
 * A refusal rolls everything back and is audited on its own, outcome refused, with its code.
 */
@Injectable()
export class Secrets {
  constructor(
    private readonly dataSource: DataSource,
    private readonly secrets: SecretsRepository,
    private readonly cas: ClusterCasRepository,
    private readonly materials: SecretMaterials,
    private readonly machines: MachinesRepository,
    private readonly audit: AuditLog,
    private readonly keys: MasterKeys,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    // The deliveries of each new version, planned in its transaction (libs/deliveries); absent, none.
    @Optional() private readonly versionHook?: SecretVersionHook,
  ) {}

  async create(body: unknown, actor: string): Promise<SecretView<Date>> {
    try {
      const request = parseCreateRequest(body);
      return await this.dataSource.transaction(async (m) => {
        const target = await this.resolveTarget(request.target, m);
        if (request.kind === 'kubelet-client' && (await this.cas.find('kubernetes', m)) === undefined) {
          throw new SecretError('secret.no-kubernetes-ca', 'a kubelet-client secret needs the Kubernetes cluster CA: import it first (rackseal ca import --kind kubernetes CERT KEY)');
        }
        const now = this.clock.now();
        const secret: StoredSecret = {
          id: this.random.uuid(),
          name: request.name,
          kind: request.kind,
          targetGroup: 'group' in target ? target.group : null,
          targetMachineId: 'machine' in target ? target.machine.id : null,
          binding: request.binding,
          parameters: request.parameters,
          createdAt: now,
          createdBy: actor,
        };
        if (!(await this.secrets.insertSecret(secret, m))) {
          throw new SecretError('secret.exists', `a secret named ${request.name} exists already (rackseal secrets rotate ${request.name} makes a new version)`);
        }
        const { version, machines } = await this.newVersion(secret, 1, request.value, actor, m);
        await this.versionHook?.versionCreated({ secret, version, trigger: 'created', actor }, m);
        await this.audit.append(
          {
            actor,
            action: 'secret.created',
            subject: `secret:${secret.name}`,
            outcome: 'success',
            details: { name: secret.name, id: secret.id, kind: secret.kind, binding: secret.binding, ...targetDetails(secret, target), version: 1, versionId: version.id, machines, uploaded: request.value !== undefined },
          },
          m,
        );
        return this.viewOf(secret, { version: 1, createdAt: version.createdAt, createdBy: actor, machines }, 'machine' in target ? target.machine.serial : null);
      });
    } catch (error) {
      await this.auditRefusal(error, { action: 'secret.created', about: describeRequest(body) }, actor);
      throw error;
    }
  }

  /**
   * A new version of `name` (an opaque one takes an uploaded `value` or generates one). `group`, when
   * given, must be the secret's target group: the operator's check that the rotation reaches the
   * machines they meant (a machine-targeted secret refuses it).
   */
  async rotate(name: string, body: unknown, actor: string): Promise<SecretView<Date>> {
    try {
      checkSecretName(name);
      return await this.dataSource.transaction(async (m) => {
        const secret = await this.secrets.findByName(name, m, true);
        if (secret === undefined) {
          throw new SecretError('secret.not-found', `no secret named ${name}`);
        }
        const request = parseRotateRequest(body, secret.kind);
        if (request.group !== undefined) {
          if (secret.targetGroup === null) {
            throw new SecretError('secret.invalid', `group: ${name} targets one machine, not a group; rotate it without --group`);
          }
          if (secret.targetGroup !== request.group) {
            throw new SecretError('secret.wrong-group', `${name} targets group ${secret.targetGroup}, not ${request.group}; nothing rotated`);
          }
        }
        if (request.fromVersion !== undefined) {
          // Under the secret's row lock: of two rotations from one page state, the second sees the first's version.
          const [latest] = await this.secrets.versionsOf(secret.id, m);
          if (latest?.version !== request.fromVersion) {
            throw new SecretError('secret.version-changed', `${name} is at version ${latest?.version ?? 0}, not ${request.fromVersion}: another rotation got there first; nothing rotated`);
          }
        }
        const { version, machines } = await this.rotateWithin(secret, { value: request.value, trigger: 'rotated', actor }, m);
        const serial = secret.targetMachineId === null ? null : ((await this.machines.findById(secret.targetMachineId, m))?.serial ?? null);
        return this.viewOf(secret, { version: version.version, createdAt: version.createdAt, createdBy: actor, machines }, serial);
      });
    } catch (error) {
      await this.auditRefusal(error, { action: 'secret.rotated', about: { name: describeRequest({ name }).name, kind: null } }, actor);
      throw error;
    }
  }

  /**
   * A scheduled rotation (the worker's `secret.rotate` job): a new version only while `fromVersion`
   * is still the latest, so a job run twice, or two jobs of one due secret, make one version.
   * Answers the new version's number, or undefined when another run (or an operator) got there first.
   */
  async rotateIfLatest(secretId: string, fromVersion: number, trigger: Exclude<SecretVersionTrigger, 'created' | 'rotated'>, actor: string, details: Record<string, string> = {}): Promise<number | undefined> {
    return this.dataSource.transaction(async (m) => {
      const secret = await this.secrets.findById(secretId, m, true);
      if (secret === undefined) {
        return undefined;
      }
      const [latest] = await this.secrets.versionsOf(secret.id, m);
      if (latest?.version !== fromVersion) {
        return undefined;
      }
      return (await this.rotateWithin(secret, { trigger, actor, details }, m)).version.version;
    });
  }

  /**
   * Version N+1 of a secret whose row `m` holds locked: its material, its deliveries (the hook), a
   * cleared rotation-required flag, and the `secret.rotated` record with the trigger — one
   * transaction with the decision that asked for it (an operator's rotate, a schedule, a revocation).
   * An opaque secret without a `value` gets a generated one.
   */
  async rotateWithin(
    secret: StoredSecret,
    request: { value?: SecretBytes; trigger: Exclude<SecretVersionTrigger, 'created'>; actor: string; details?: Record<string, string> },
    m: EntityManager,
  ): Promise<{ version: StoredSecretVersion; machines: number }> {
    const [latest] = await this.secrets.versionsOf(secret.id, m);
    const number = (latest?.version ?? 0) + 1;
    const { version, machines } = await this.newVersion(secret, number, request.value, request.actor, m);
    await this.versionHook?.versionCreated({ secret, version, trigger: request.trigger, actor: request.actor }, m);
    await this.secrets.clearRotationRequired(secret.id, m);
    await this.audit.append(
      {
        actor: request.actor,
        action: 'secret.rotated',
        subject: `secret:${secret.name}`,
        outcome: 'success',
        details: { name: secret.name, id: secret.id, kind: secret.kind, version: number, versionId: version.id, machines, uploaded: request.value !== undefined, trigger: request.trigger, ...request.details },
      },
      m,
    );
    return { version, machines };
  }

  async show(name: string): Promise<SecretView<Date>> {
    return this.view(await this.find(name));
  }

  async list(after: string | undefined, limit: number): Promise<SecretView<Date>[]> {
    const page = await this.secrets.list(after, limit);
    return Promise.all(page.map((s) => this.view(s)));
  }

  /** Every version of `name`, newest first, with the machines holding material of each. */
  async versions(name: string): Promise<SecretVersionDetail<Date>[]> {
    const secret = await this.find(name);
    const versions = await this.secrets.versionsOf(secret.id);
    return Promise.all(
      versions.map(async (v) => {
        const materials: SecretMaterialSummary<Date>[] = await this.secrets.materialsOf(v.id);
        return { version: v.version, createdAt: v.createdAt, createdBy: v.createdBy, machines: materials.length, retiredAt: v.retiredAt, materials };
      }),
    );
  }

  private async find(name: string): Promise<StoredSecret> {
    checkSecretName(name);
    const secret = await this.secrets.findByName(name);
    if (secret === undefined) {
      throw new SecretError('secret.not-found', `no secret named ${name}`);
    }
    return secret;
  }

  /** Writes version `number` and the material of every attested machine of the target. */
  private async newVersion(secret: StoredSecret, number: number, value: SecretBytes | undefined, actor: string, m: EntityManager): Promise<{ version: StoredSecretVersion; machines: number }> {
    const id = this.random.uuid();
    let valueSealed: Buffer | null = null;
    if (secret.kind === 'opaque') {
      const plain = value ?? new SecretBytes(this.random.bytes(secret.parameters.size!));
      valueSealed = sealEnvelope(this.keys, secretVersionValueContext(id), plain, (n) => this.random.bytes(n));
    }
    const version: StoredSecretVersion = {
      id,
      secretId: secret.id,
      version: number,
      valueSealed,
      valueOrigin: secret.kind === 'opaque' ? (value === undefined ? 'generated' : 'uploaded') : null,
      createdAt: this.clock.now(),
      createdBy: actor,
      retiredAt: null,
    };
    await this.secrets.insertVersion(version, m);
    if (secret.kind === 'opaque') {
      return { version, machines: 0 };
    }
    let machines = 0;
    for (const machine of await attestedTargetsOf(this.machines, secret, m)) {
      await this.materials.materialFor(id, machine.id, m, actor);
      machines += 1;
    }
    return { version, machines };
  }

  private async resolveTarget(target: { group: string } | { machine: string }, m: EntityManager): Promise<{ group: string } | { machine: Machine }> {
    if ('group' in target) {
      // A group exists when a machine is in it (groups come from the inventory).
      if ((await this.machines.list({ group: target.group, limit: 1 }, m)).length === 0) {
        throw new SecretError('secret.unknown-group', `no machine is in group ${target.group}`);
      }
      return target;
    }
    let machine: Machine | undefined;
    try {
      machine = await this.machines.findByRef(parseMachineRef(target.machine), m);
    } catch (error) {
      if (error instanceof MachineRefError) {
        throw new SecretError('secret.invalid', `target.machine: ${error.message}`);
      }
      throw error;
    }
    if (machine === undefined) {
      throw new SecretError('secret.unknown-machine', `no machine with id or serial ${JSON.stringify(target.machine.slice(0, 130))}`);
    }
    return { machine };
  }

  private async view(secret: StoredSecret): Promise<SecretView<Date>> {
    const [latest] = await this.secrets.versionsOf(secret.id);
    const counts = latest === undefined ? new Map<string, number>() : await this.secrets.materialCounts([latest.id]);
    const serial = secret.targetMachineId === null ? null : ((await this.machines.findById(secret.targetMachineId))?.serial ?? null);
    return this.viewOf(secret, { version: latest!.version, createdAt: latest!.createdAt, createdBy: latest!.createdBy, machines: counts.get(latest!.id) ?? 0 }, serial);
  }

  private viewOf(secret: StoredSecret, latestVersion: SecretVersionSummary<Date>, serial: string | null): SecretView<Date> {
    return {
      id: secret.id,
      name: secret.name,
      kind: secret.kind,
      target: { group: secret.targetGroup, machineId: secret.targetMachineId, serial },
      binding: secret.binding,
      parameters: secret.parameters,
      createdAt: secret.createdAt,
      createdBy: secret.createdBy,
      latestVersion,
      rotationRequired:
        secret.rotationRequiredAt === null || secret.rotationRequiredAt === undefined ? null : { since: secret.rotationRequiredAt, reason: secret.rotationRequiredReason ?? '' },
    };
  }

  /** A refused create or rotate: audited after the rollback, names and the code only. */
  private async auditRefusal(error: unknown, { action, about }: { action: string; about: { name: string | null; kind: string | null } }, actor: string): Promise<void> {
    if (!(error instanceof SecretError)) {
      return;
    }
    await this.audit.append({
      actor,
      action,
      subject: about.name === null ? '' : `secret:${about.name}`,
      outcome: 'refused',
      details: { name: about.name, kind: about.kind, code: error.code, reason: error.message },
    });
  }
}

function targetDetails(secret: StoredSecret, target: { group: string } | { machine: Machine }): { group: string | null; machineId: string | null; serial: string | null } {
  return { group: secret.targetGroup, machineId: secret.targetMachineId, serial: 'machine' in target ? target.machine.serial : null };
}
