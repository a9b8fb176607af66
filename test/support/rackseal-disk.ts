import { randomBytes } from 'node:crypto';
import { SecretBytes } from '@rackseal/config/secret-bytes';
import { encodeDeliveryPayload, parseDeliveryPayload } from '@rackseal/node-api-contracts';
import { wrapToApprovedPcrPolicy } from '@rackseal/wrapping';
import { parseAgentConfig } from '../../apps/agent/src/install/agent-config';
import { install } from '../../apps/agent/src/install/install';
import { luksImage } from '../../demo/support/luks-image';
import type { ApprovalSigner, ProvisionedMachine } from './wrapping';

export { luksImage };

/**
 * LUKS2 image files with a rackseal disk key, for the boot unlock tests (test/agent-unlock.test.ts,
 * test/deploy-files.test.ts): formatted by cryptsetup (demo/support/luks-image.ts), the key installed
 * by the agent's installs code with the PCR-sealed envelope libs/wrapping makes for the machine's EK.
 */

export interface InstalledDisk {
  readonly image: string;
  /** The disk key (generation 1), to compare `unlock`'s output with. */
  readonly key: Buffer;
  readonly envelope: Buffer;
}

let deliveries = 0;

/** A fresh image with generation 1 of a fresh key installed, sealed to `group` at `epoch` for `machine`'s EK. */
export async function installedDisk(parent: string, machine: ProvisionedMachine, signer: ApprovalSigner, group: string, epoch: number): Promise<InstalledDisk> {
  const { image, enrollKeyFile } = luksImage(parent);
  const key = randomBytes(32);
  const deliveryId = `delivery-disk-${++deliveries}`;
  const payload = encodeDeliveryPayload({ format: 1, kind: 'disk', key: key.toString('base64'), generation: 1 });
  const envelope = wrapToApprovedPcrPolicy({ ekPublic: machine.ekPublic, group, epoch, signingKeyName: signer.name }, payload, { deliveryId, secretVersion: 1 });
  const config = parseAgentConfig({ installs: { 'root-disk': { kind: 'disk', device: image, enrollKeyFile } } }, 'agent.yaml');
  const report = await install({ name: 'root-disk', kind: 'disk', version: 1, deliveryId, payload: parseDeliveryPayload(payload, (b) => new SecretBytes(b)), envelope }, config);
  if (report.disk?.changed !== true || report.disk.generation !== 1) {
    throw new Error(`installedDisk: the install did not put generation 1 in (${JSON.stringify(report.disk)})`);
  }
  return { image, key, envelope };
}
