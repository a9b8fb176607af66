import type { SecretBytes } from '@rackseal/config/secret-bytes';
import type { ApprovalsResponse, DeliveryPayload, DeliveryPayloadKind } from '@rackseal/node-api-contracts';
import type { AgentConfig } from './agent-config';
import type { WrittenFile } from './atomic-files';
import { type DiskInstallDependencies, type DiskOutcome, installDiskKey } from './disk-install';
import { type FilePayload, installFiles } from './file-installs';
import { InstallError } from './install-errors';
import { type ReloadOutcome, RELOAD_TIMEOUT_MS, runReload } from './reload';

/** A delivery once unwrapped: what the delivery loop hands to install(). */
export interface DeliveredSecret {
  readonly name: string;
  readonly kind: DeliveryPayloadKind;
  readonly version: number;
  readonly deliveryId: string;
  /** parseDeliveryPayload's result, secret fields as SecretBytes. */
  readonly payload: DeliveryPayload<SecretBytes>;
  /** The PCR-sealed envelope the payload came in: a disk's token keeps it for boot unlock. */
  readonly envelope?: Uint8Array;
  /** The approvals that envelope was opened with (pcr-sealed): a disk's token keeps them beside a replaced envelope. */
  readonly approvals?: ApprovalsResponse;
}

export interface InstallDependencies extends DiskInstallDependencies {
  /** Where passwd and group are read (default /etc). */
  readonly etcDir?: string;
  readonly reloadTimeoutMs?: number;
}

/** What an install did, for the delivery loop's log line and ack. Holds no secret. */
export interface InstallReport {
  readonly name: string;
  readonly kind: DeliveryPayloadKind;
  readonly version: number;
  readonly deliveryId: string;
  /** False when everything already was as delivered (a re-applied delivery). */
  readonly changed: boolean;
  readonly files?: readonly WrittenFile[];
  readonly disk?: DiskOutcome;
  /** Present when a reload command ran (only after a file changed). A failed reload does not fail the install. */
  readonly reload?: ReloadOutcome;
}

/**
 * Installs one delivered secret where the config's `installs` entry for its name says: files for
 * tls, kubelet-client and opaque (atomic-files.ts), a LUKS2 keyslot for disk (disk-install.ts).
 * Re-applying a delivery is harmless: identical files are not rewritten, a disk generation is
 * applied once. Throws InstallError when nothing could be installed; a reload's failure is in the
 * report instead, since the install itself happened.
 */
export async function install(secret: DeliveredSecret, config: AgentConfig, deps: InstallDependencies = {}): Promise<InstallReport> {
  const target = config.installs.get(secret.name);
  if (target === undefined) {
    throw new InstallError('install.no-target', `${secret.name}: the agent's config has no installs entry for this secret; nothing was written`);
  }
  if (target.kind !== secret.kind || secret.payload.kind !== secret.kind) {
    throw new InstallError('install.kind-mismatch', `${secret.name}: delivered as ${secret.kind} with a ${secret.payload.kind} payload, configured as ${target.kind}; nothing was written`);
  }
  const base = { name: secret.name, kind: secret.kind, version: secret.version, deliveryId: secret.deliveryId };
  if (secret.payload.kind === 'disk' && target.kind === 'disk') {
    const disk = await installDiskKey(
      {
        name: secret.name,
        key: secret.payload.key,
        generation: secret.payload.generation,
        ...(secret.envelope === undefined ? {} : { envelope: secret.envelope }),
        ...(secret.approvals === undefined ? {} : { approvals: secret.approvals }),
      },
      target,
      deps,
    );
    return { ...base, changed: disk.changed, disk };
  }
  if (target.kind === 'disk') {
    throw new InstallError('install.kind-mismatch', `${secret.name}: configured as disk`); // unreachable: the kinds were compared above
  }
  const files = await installFiles(secret.name, secret.payload as FilePayload, target, deps.etcDir);
  const changed = files.some((f) => f.changed);
  if (!changed || target.reload === undefined) {
    return { ...base, changed, files };
  }
  return { ...base, changed, files, reload: await runReload(target.reload, deps.reloadTimeoutMs ?? RELOAD_TIMEOUT_MS) };
}
