import { Injectable } from '@nestjs/common';
import { CLUSTER_CA_KINDS, type ClusterCaKind, type ClusterCaView, MAX_CA_PEM_CHARS } from '@rackseal/api-contracts';
import { AuditLog } from '@rackseal/audit';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { MasterKeys, openEnvelope, sealEnvelope } from '@rackseal/envelope';
import { Clock, RandomSource } from '@rackseal/platform';
import * as x509 from '@peculiar/x509';
import { DataSource, type EntityManager } from 'typeorm';
import { checkCaImport, createTlsCa, fingerprintOf, type SigningCa } from './certificates';
import { ClusterCasRepository, type StoredClusterCa } from './cluster-cas.repository';
import { clusterCaKeyContext } from './sealed-columns';
import { CaError } from './secret-errors';

export function parseCaKind(text: string): ClusterCaKind {
  if (!(CLUSTER_CA_KINDS as readonly string[]).includes(text)) {
    throw new CaError('ca.invalid-kind', `the CA kind must be one of ${CLUSTER_CA_KINDS.join(', ')}`);
  }
  return text as ClusterCaKind;
}

/**
 * The cluster CAs (issue 13 item 4): the TLS CA, created on first use (an ECDSA P-384 root) or
 * imported, and the Kubernetes CA, imported only. Keys are sealed under the master key
 * (`cluster-ca:<id>`) and opened for one signature at a time. Audited: `ca.created`, `ca.imported`
 * (also refused), with kind, fingerprint and subject — never the key.
 */
@Injectable()
export class ClusterCas {
  constructor(
    private readonly dataSource: DataSource,
    private readonly cas: ClusterCasRepository,
    private readonly audit: AuditLog,
    private readonly keys: MasterKeys,
    private readonly clock: Clock,
    private readonly random: RandomSource,
  ) {}

  async show(kindText: string): Promise<ClusterCaView<Date>> {
    return view(await this.stored(parseCaKind(kindText)));
  }

  async certificatePem(kindText: string): Promise<string> {
    return (await this.stored(parseCaKind(kindText))).certificatePem;
  }

  /**
   * Imports a CA of `kind` (certificate and key PEM). Refused, audited, nothing written: a bad kind,
   * a certificate that is not one CA certificate, a key that is not its key, or a kind that already
   * has a CA (`ca.exists`: replacing a CA would strand every certificate issued from it; the
   * decision is in docs/decisions.md).
   */
  async import(kindText: string, certificatePem: unknown, keyPem: unknown, actor: string): Promise<ClusterCaView<Date>> {
    try {
      const kind = parseCaKind(kindText);
      if (typeof certificatePem !== 'string' || certificatePem.length === 0 || certificatePem.length > MAX_CA_PEM_CHARS) {
        throw new CaError('ca.invalid', `certificate must be a PEM text of at most ${MAX_CA_PEM_CHARS} characters`);
      }
      if (typeof keyPem !== 'string' || keyPem.length === 0 || keyPem.length > MAX_CA_PEM_CHARS) {
        throw new CaError('ca.invalid', `privateKey must be a PEM text of at most ${MAX_CA_PEM_CHARS} characters`);
      }
      const key = new SecretBytes(Buffer.from(keyPem, 'utf8'));
      const checked = checkCaImport(certificatePem, key, this.clock.now());
      return await this.dataSource.transaction(async (m) => {
        const ca = this.storedCa(kind, 'imported', checked.certificate, checked.keyAlgorithm, checked.key, actor);
        if (!(await this.cas.insertIfAbsent(ca, m))) {
          throw new CaError('ca.exists', `the ${kind} CA exists already (rackseal ca show --kind ${kind}); it is not replaced`);
        }
        await this.audit.append(
          { actor, action: 'ca.imported', subject: `ca:${kind}`, outcome: 'success', details: { kind, fingerprint: ca.fingerprint, subject: ca.subject, keyAlgorithm: ca.keyAlgorithm } },
          m,
        );
        return view(ca);
      });
    } catch (error) {
      if (error instanceof CaError) {
        const kind = (CLUSTER_CA_KINDS as readonly string[]).includes(kindText) ? kindText : null;
        await this.audit.append({ actor, action: 'ca.imported', subject: kind === null ? '' : `ca:${kind}`, outcome: 'refused', details: { kind, code: error.code, reason: error.message } });
      }
      throw error;
    }
  }

  /**
   * The CA of `kind` able to sign, in the caller's transaction. The TLS CA is created when there is
   * none (audited `ca.created` in that transaction; a concurrent creator's row wins and is used);
   * the Kubernetes CA is undefined until imported.
   */
  async signingCa(kind: ClusterCaKind, actor: string, m: EntityManager): Promise<(SigningCa & { stored: StoredClusterCa }) | undefined> {
    let stored = await this.cas.find(kind, m);
    if (stored === undefined && kind === 'tls') {
      const created = await createTlsCa(this.clock.now());
      const certificate = new x509.X509Certificate(created.certificatePem);
      const ca = this.storedCa('tls', 'created', certificate, 'ecdsa-p384', created.key, actor);
      if (await this.cas.insertIfAbsent(ca, m)) {
        await this.audit.append(
          { actor, action: 'ca.created', subject: 'ca:tls', outcome: 'success', details: { kind: 'tls', fingerprint: ca.fingerprint, subject: ca.subject, keyAlgorithm: ca.keyAlgorithm } },
          m,
        );
      }
      stored = await this.cas.find(kind, m);
    }
    if (stored === undefined) {
      return undefined;
    }
    return { certificate: new x509.X509Certificate(stored.certificatePem), key: openEnvelope(this.keys, clusterCaKeyContext(stored.id), stored.keySealed), stored };
  }

  private async stored(kind: ClusterCaKind): Promise<StoredClusterCa> {
    const stored = await this.cas.find(kind);
    if (stored === undefined) {
      throw new CaError(
        'ca.not-found',
        kind === 'tls' ? 'there is no TLS CA yet: it is created with the first tls secret, or imported (rackseal ca import --kind tls)' : 'no Kubernetes CA was imported (rackseal ca import --kind kubernetes)',
      );
    }
    return stored;
  }

  private storedCa(kind: ClusterCaKind, origin: 'created' | 'imported', certificate: x509.X509Certificate, keyAlgorithm: string, key: SecretBytes, actor: string): StoredClusterCa {
    const id = this.random.uuid();
    return {
      id,
      kind,
      origin,
      certificatePem: certificate.toString('pem'),
      fingerprint: fingerprintOf(certificate),
      subject: certificate.subject,
      keyAlgorithm,
      notBefore: certificate.notBefore,
      notAfter: certificate.notAfter,
      keySealed: sealEnvelope(this.keys, clusterCaKeyContext(id), key, (n) => this.random.bytes(n)),
      createdAt: this.clock.now(),
      createdBy: actor,
    };
  }
}

function view(ca: StoredClusterCa): ClusterCaView<Date> {
  return {
    kind: ca.kind,
    origin: ca.origin,
    subject: ca.subject,
    fingerprint: ca.fingerprint,
    keyAlgorithm: ca.keyAlgorithm,
    notBefore: ca.notBefore,
    notAfter: ca.notAfter,
    createdAt: ca.createdAt,
    createdBy: ca.createdBy,
    certificate: ca.certificatePem,
  };
}
