import { Injectable } from '@nestjs/common';
import type { KubeletParameters, TlsParameters } from './secret-request';
import { type Machine, MachinesRepository } from '@rackseal/machines';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { MasterKeys, openEnvelope, sealEnvelope } from '@rackseal/envelope';
import { AuditLog } from '@rackseal/audit';
import { Clock, RandomSource } from '@rackseal/platform';
import * as x509 from '@peculiar/x509';
import { DataSource, type EntityManager } from 'typeorm';
import { generateKeyPair, issueCertificate } from './certificates';
import { ClusterCas } from './cluster-cas';
import { renderKubeletConf } from './kubelet-conf';
import { isDnsName, renderSan } from './san-template';
import { secretMaterialContext, secretVersionValueContext } from './sealed-columns';
import { SecretError } from './secret-errors';
import { type StoredSecret, type StoredSecretMaterial, type StoredSecretVersion, SecretsRepository } from './secrets.repository';

/** Who creates material outside an operator call (issue 14's deliveries). */
export const SECRETS_SYSTEM_ACTOR = 'system:secrets';

/** Material as the machine's row holds it, before sealing. */
interface FreshMaterial {
  readonly material: SecretBytes;
  readonly certificate?: x509.X509Certificate;
  readonly kubeletConf?: string;
}

/**
 * Per-machine material of a secret version (`tls`, `disk`, `kubelet-client`): made once per
 * (version, machine) and sealed under the master key with `secret-material:<row id>`. `materialFor`
 * is what issue 14's deliveries call when a machine attests; it is idempotent (a conditional insert
 * on the unique (version, machine), the loser reads the winner's row), so a job run twice, or two
 * jobs at once, leave one material. An `opaque` secret has no per-machine material: its value is the
 * version's (`openValue`).
 */
@Injectable()
export class SecretMaterials {
  constructor(
    private readonly dataSource: DataSource,
    private readonly secrets: SecretsRepository,
    private readonly machines: MachinesRepository,
    private readonly cas: ClusterCas,
    private readonly keys: MasterKeys,
    private readonly clock: Clock,
    private readonly random: RandomSource,
    private readonly audit: AuditLog,
  ) {}

  /**
   * The machine's material of a version, created when it has none. Refused (`secret.machine-unfit`)
   * for a machine outside the secret's target, not attested, or whose names do not fit the kind (no
   * hostname, a SAN that does not render to a DNS name); undefined for an opaque secret.
   */
  async materialFor(versionId: string, machineId: string, manager?: EntityManager, actor = SECRETS_SYSTEM_ACTOR): Promise<StoredSecretMaterial | undefined> {
    if (manager === undefined) {
      return this.dataSource.transaction((m) => this.materialFor(versionId, machineId, m, actor));
    }
    const version = await this.secrets.findVersion(versionId, manager);
    const secret = version === undefined ? undefined : await this.secrets.findById(version.secretId, manager);
    if (version === undefined || secret === undefined) {
      throw new SecretError('secret.not-found', `no secret version ${versionId}`);
    }
    if (secret.kind === 'opaque') {
      return undefined;
    }
    const existing = await this.secrets.findMaterial(versionId, machineId, manager);
    if (existing !== undefined) {
      return existing;
    }
    const machine = await this.machines.findById(machineId, manager);
    if (machine === undefined) {
      throw new SecretError('secret.unknown-machine', `no machine ${machineId}`);
    }
    const inTarget = secret.targetGroup !== null ? machine.group === secret.targetGroup : machine.id === secret.targetMachineId;
    if (!inTarget || machine.state !== 'attested') {
      throw new SecretError('secret.machine-unfit', `machine ${machine.serial} ${inTarget ? `is ${machine.state}, not attested` : 'is not of the secret\'s target'}: it gets no material of ${secret.name}`);
    }
    const fresh = await this.fresh(secret, machine, actor, manager);
    const id = this.random.uuid();
    const row: StoredSecretMaterial = {
      id,
      versionId,
      machineId,
      materialSealed: sealEnvelope(this.keys, secretMaterialContext(id), fresh.material, (n) => this.random.bytes(n)),
      certificatePem: fresh.certificate?.toString('pem') ?? null,
      certificateSerial: fresh.certificate === undefined ? null : fresh.certificate.serialNumber.toLowerCase(),
      notAfter: fresh.certificate?.notAfter ?? null,
      kubeletConf: fresh.kubeletConf ?? null,
      createdAt: this.clock.now(),
    };
    if (await this.secrets.insertMaterialIfAbsent(row, manager)) {
      return row;
    }
    return (await this.secrets.findMaterial(versionId, machineId, manager))!;
  }

  /**
   * The disk key of a machine that has never attested, for a pre-wrap at import (issue 14 item 6):
   * the one deliberate exception to `materialFor`'s "attested only". Only a `disk` secret bound
   * `pcr-sealed` (what only an approved boot of that machine's TPM can open), only a machine still
   * `imported` and of the secret's target; refused `secret.machine-unfit` otherwise. The same row
   * `materialFor` answers later, so the machine's attestation delivers this very key. A material
   * made here is audited `secret.material-prewrapped` (ids only), in the caller's transaction.
   */
  async materialForImported(versionId: string, machineId: string, manager: EntityManager, actor = SECRETS_SYSTEM_ACTOR): Promise<StoredSecretMaterial> {
    const version = await this.secrets.findVersion(versionId, manager);
    const secret = version === undefined ? undefined : await this.secrets.findById(version.secretId, manager);
    if (version === undefined || secret === undefined) {
      throw new SecretError('secret.not-found', `no secret version ${versionId}`);
    }
    if (secret.kind !== 'disk' || secret.binding !== 'pcr-sealed') {
      throw new SecretError('secret.machine-unfit', `${secret.name} is a ${secret.kind} secret bound ${secret.binding}: only pcr-sealed disk keys are made for a machine before it attests`);
    }
    const existing = await this.secrets.findMaterial(versionId, machineId, manager);
    if (existing !== undefined) {
      return existing;
    }
    const machine = await this.machines.findById(machineId, manager);
    if (machine === undefined) {
      throw new SecretError('secret.unknown-machine', `no machine ${machineId}`);
    }
    const inTarget = secret.targetGroup !== null ? machine.group === secret.targetGroup : machine.id === secret.targetMachineId;
    if (!inTarget || machine.state !== 'imported') {
      throw new SecretError('secret.machine-unfit', `machine ${machine.serial} ${inTarget ? `is ${machine.state}, not imported` : "is not of the secret's target"}: no pre-wrapped key of ${secret.name} is made for it`);
    }
    const id = this.random.uuid();
    const material = new SecretBytes(this.random.bytes(secret.parameters.size!));
    const row: StoredSecretMaterial = {
      id,
      versionId,
      machineId,
      materialSealed: sealEnvelope(this.keys, secretMaterialContext(id), material, (n) => this.random.bytes(n)),
      certificatePem: null,
      certificateSerial: null,
      notAfter: null,
      kubeletConf: null,
      createdAt: this.clock.now(),
    };
    material.reveal().fill(0);
    if (!(await this.secrets.insertMaterialIfAbsent(row, manager))) {
      return (await this.secrets.findMaterial(versionId, machineId, manager))!;
    }
    await this.audit.append(
      {
        actor,
        action: 'secret.material-prewrapped',
        subject: `secret:${secret.name}`,
        outcome: 'success',
        details: { name: secret.name, id: secret.id, version: version.version, versionId, machineId, serial: machine.serial },
      },
      manager,
    );
    return row;
  }

  /** A material's secret bytes (PKCS#8 DER of the key, or the random bytes): for deliveries, never an API answer. */
  openMaterial(material: StoredSecretMaterial): SecretBytes {
    return openEnvelope(this.keys, secretMaterialContext(material.id), material.materialSealed);
  }

  /** An opaque version's value: for deliveries, never an API answer. */
  openValue(version: StoredSecretVersion): SecretBytes | undefined {
    return version.valueSealed === null ? undefined : openEnvelope(this.keys, secretVersionValueContext(version.id), version.valueSealed);
  }

  private async fresh(secret: StoredSecret, machine: Machine, actor: string, m: EntityManager): Promise<FreshMaterial> {
    switch (secret.kind) {
      case 'disk':
        return { material: new SecretBytes(this.random.bytes(secret.parameters.size!)) };
      case 'tls': {
        const p = secret.parameters as TlsParameters;
        const dnsNames = p.sans.map((template, i) => {
          const name = renderSan(template, { hostname: machine.hostname, serial: machine.serial, group: machine.group, machineId: machine.id });
          if (name === undefined) {
            throw new SecretError('secret.machine-unfit', `machine ${machine.serial}: SAN template ${i + 1} of ${secret.name} does not render to a DNS name (a placeholder empty, or a value with characters a DNS name cannot hold)`);
          }
          return name;
        });
        if (p.sans.some((template) => template.includes('{hostname}'))) {
          await this.refuseSharedHostname(secret, machine, m);
        }
        const ca = (await this.cas.signingCa('tls', actor, m))!;
        return this.certified(ca, p.keyAlgorithm, { subject: [{ CN: [dnsNames[0]!] }], dnsNames: [...new Set(dnsNames)], extendedKeyUsages: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], validityDays: p.validityDays });
      }
      case 'kubelet-client': {
        const p = secret.parameters as KubeletParameters;
        // The node name the kubelet registers: a DNS subdomain (Kubernetes object names), lowercase.
        const hostname = machine.hostname?.toLowerCase();
        if (hostname === undefined || !isDnsName(hostname)) {
          throw new SecretError('secret.machine-unfit', `machine ${machine.serial} has no hostname that is a DNS name: a kubelet client certificate names system:node:<hostname>`);
        }
        await this.refuseSharedHostname(secret, machine, m);
        const ca = await this.cas.signingCa('kubernetes', actor, m);
        if (ca === undefined) {
          throw new SecretError('secret.no-kubernetes-ca', 'no Kubernetes CA was imported (rackseal ca import --kind kubernetes CERT KEY)');
        }
        const fresh = await this.certified(ca, p.keyAlgorithm, {
          subject: [{ O: ['system:nodes'] }, { CN: [`system:node:${hostname}`] }],
          dnsNames: [],
          extendedKeyUsages: [x509.ExtendedKeyUsage.clientAuth],
          validityDays: p.validityDays,
        });
        return { ...fresh, kubeletConf: renderKubeletConf({ server: p.server, clusterName: p.clusterName, hostname, caCertificatePem: ca.stored.certificatePem }) };
      }
      case 'opaque':
        throw new Error('an opaque secret has no per-machine material');
    }
  }

  /**
   * A certificate naming a hostname that another live machine also has would let either machine be
   * the other (a kubelet client's system:node:<hostname> is what the Kubernetes Node authorizer
   * trusts; a {hostname} SAN is what TLS peers check): refused until the inventory tells them apart
   * or the other machine is revoked.
   */
  private async refuseSharedHostname(secret: StoredSecret, machine: Machine, m: EntityManager): Promise<void> {
    const other = await this.machines.otherWithHostname(machine, m);
    if (other !== undefined) {
      throw new SecretError(
        'secret.machine-unfit',
        `machine ${machine.serial} shares its hostname ${machine.hostname} with machine ${other.serial} (${other.state}): a certificate of ${secret.name} naming it would name both; give each its own hostname in the inventory, or revoke the one replaced`,
      );
    }
  }

  private async certified(
    ca: Parameters<typeof issueCertificate>[0],
    algorithm: TlsParameters['keyAlgorithm'],
    profile: Parameters<typeof issueCertificate>[2],
  ): Promise<FreshMaterial> {
    const key = generateKeyPair(algorithm);
    return { material: key.privateKey, certificate: await issueCertificate(ca, key.publicKey, profile, this.clock.now()) };
  }
}
