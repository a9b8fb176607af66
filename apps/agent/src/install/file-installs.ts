import { createPrivateKey, X509Certificate } from 'node:crypto';
import type { SecretBytes } from '@rackseal/config/secret-bytes';
import type { DeliveryPayload } from '@rackseal/node-api-contracts';
import { type KubeletClientTarget, type OpaqueTarget, PUBLIC_FILE_MODE, DEFAULT_SECRET_MODE, type TlsTarget } from './agent-config';
import { type FileToWrite, type WrittenFile, writeFilesAtomically } from './atomic-files';
import { InstallError } from './install-errors';
import { resolveOwner } from './owners';

export type FilePayload = Exclude<DeliveryPayload<SecretBytes>, { kind: 'disk' }>;
export type FileTarget = TlsTarget | KubeletClientTarget | OpaqueTarget;

/**
 * The files of a tls, kubelet-client or opaque delivery, through writeFilesAtomically: every
 * temporary file complete first, then renamed chain, certificate, key — the key last. A reader that
 * opens both between those two renames (two system calls apart) sees the new certificate beside the
 * old key and fails to load that pair once; it never sees a half-written file, and the reload
 * command runs only after every rename.
 */
export async function installFiles(name: string, payload: FilePayload, target: FileTarget, etcDir?: string): Promise<WrittenFile[]> {
  const uid = await resolveOwner(target.owner, 'passwd', etcDir);
  const gid = await resolveOwner(target.group, 'group', etcDir);
  const file = (path: string, bytes: Buffer, mode: number): FileToWrite => ({ path, bytes, mode, uid, gid });
  const secrets: Buffer[] = [];
  const reveal = (secret: SecretBytes): Buffer => {
    const bytes = secret.reveal();
    secrets.push(bytes);
    return bytes;
  };
  try {
    switch (payload.kind) {
      case 'tls': {
        const t = target as TlsTarget;
        const key = reveal(payload.keyPem);
        checkPair(name, key, payload.certPem);
        return await writeFilesAtomically([
          ...(t.chainPath === undefined ? [] : [file(t.chainPath, Buffer.from(payload.chainPem, 'utf8'), PUBLIC_FILE_MODE)]),
          file(t.certPath, Buffer.from(payload.certPem, 'utf8'), PUBLIC_FILE_MODE),
          file(t.keyPath, key, t.mode),
        ]);
      }
      case 'kubelet-client': {
        const t = target as KubeletClientTarget;
        const key = reveal(payload.keyPem);
        checkPair(name, key, payload.certPem);
        // The kubelet's certificate store writes the certificate, then the key, into one 0600 file
        // (kubelet-client-current.pem); kubeadm writes kubelet.conf 0600 too.
        const pem = Buffer.concat([Buffer.from(payload.certPem, 'utf8'), key]);
        secrets.push(pem);
        return await writeFilesAtomically([file(t.kubeconfigPath, Buffer.from(payload.kubeconfig, 'utf8'), DEFAULT_SECRET_MODE), file(t.pemPath, pem, DEFAULT_SECRET_MODE)]);
      }
      default: {
        const t = target as OpaqueTarget;
        return await writeFilesAtomically([file(t.path, reveal(payload.value), t.mode)]);
      }
    }
  } finally {
    for (const bytes of secrets) {
      bytes.fill(0);
    }
  }
}

/** The certificate must be the key's: a mismatched pair would take the service down at its reload. */
function checkPair(name: string, keyPem: Buffer, certPem: string): void {
  let matches: boolean;
  try {
    matches = new X509Certificate(certPem).checkPrivateKey(createPrivateKey({ key: keyPem, format: 'pem' }));
  } catch {
    throw new InstallError('install.bad-material', `${name}: the delivered certificate or key does not parse`);
  }
  if (!matches) {
    throw new InstallError('install.bad-material', `${name}: the delivered certificate is not the delivered key's`);
  }
}
