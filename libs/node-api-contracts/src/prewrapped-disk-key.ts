/**
 * Pre-wrapped disk keys (issue 14 item 6; docs/decisions.md "Pre-wrapped disk keys"): a disk key
 * sealed at import to a machine's inventory EK under its group's PCR approvals, handed to the
 * machine before it ever talks to the control plane.
 *
 *   GET /v1/machines/:ref/prewrapped → MachinePrewraps (operator API, scope secrets:write)
 *
 * One entry is the provisioning file `rackseal machines prewrapped M --out FILE` writes and
 * `rackseal-agent unlock --device DEV --prewrapped FILE` reads at first boot, offline: it unseals the
 * key in the TPM, formats the blank device with it and writes the `rackseal` LUKS2 token (the
 * envelope, the approvals, the generation), after which the disk unlocks like any rackseal disk. The
 * file holds no secret in clear: the envelope opens only in that machine's TPM, in an approved boot
 * state. Binary fields are standard base64.
 */
import type { ApprovalsResponse } from './approvals';

export const PREWRAPPED_DISK_KEY_TYPE = 'rackseal-prewrapped-disk-key';

export interface PrewrappedDiskKey {
  readonly format: 1;
  readonly type: typeof PREWRAPPED_DISK_KEY_TYPE;
  /** The machine the envelope is sealed for: its serial and ekPubHash (hex), what the TPM must have. */
  readonly machine: { readonly serial: string; readonly ekPubHash: string };
  /** The disk secret's name (the token's `secret`), its version and the key's generation (= the version). */
  readonly secret: string;
  readonly version: number;
  readonly generation: number;
  /** The pre-wrap's delivery id, bound into the envelope; the machine's attestation delivers it again under this id. */
  readonly deliveryId: string;
  /** The PCR-sealed envelope (libs/wrapping), base64. */
  readonly envelope: string;
  /** The group's signed approvals of the envelope's epoch: what the first boot opens it with. */
  readonly approvals: ApprovalsResponse;
}

export interface MachinePrewraps {
  readonly machine: { readonly id: string; readonly serial: string; readonly group: string | null; readonly ekPubHash: string };
  /** One per pre-wrapped disk secret, by secret name. */
  readonly prewraps: readonly PrewrappedDiskKey[];
}

export class PrewrappedDiskKeyError extends Error {
  constructor(readonly field: string, message: string) {
    super(`pre-wrapped disk key file: ${field} ${message}`);
    this.name = 'PrewrappedDiskKeyError';
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const FIELDS = ['format', 'type', 'machine', 'secret', 'version', 'generation', 'deliveryId', 'envelope', 'approvals'];

/** The file's JSON checked field by field (unknown fields refused); the approvals' own shape is checked by whoever uses them. */
export function parsePrewrappedDiskKey(text: string): PrewrappedDiskKey {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new PrewrappedDiskKeyError('(file)', 'is not JSON');
  }
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new PrewrappedDiskKeyError('(file)', 'is not a JSON object');
  }
  const unknown = Object.keys(o).find((k) => !FIELDS.includes(k));
  if (unknown !== undefined) {
    throw new PrewrappedDiskKeyError(JSON.stringify(unknown.slice(0, 40)), 'is not a field of the file');
  }
  if (o.format !== 1) {
    throw new PrewrappedDiskKeyError('format', 'must be 1');
  }
  if (o.type !== PREWRAPPED_DISK_KEY_TYPE) {
    throw new PrewrappedDiskKeyError('type', `must be ${PREWRAPPED_DISK_KEY_TYPE}`);
  }
  const machine = o.machine as Record<string, unknown> | null;
  if (machine === null || typeof machine !== 'object' || typeof machine.serial !== 'string' || typeof machine.ekPubHash !== 'string' || !/^[0-9a-f]{64}$/.test(machine.ekPubHash)) {
    throw new PrewrappedDiskKeyError('machine', 'must be { serial, ekPubHash: 64 lowercase hex digits }');
  }
  // The agent only looks the name up among its installs; the control plane's naming rule is its own.
  if (typeof o.secret !== 'string' || !/^[\x21-\x7e]{1,63}$/.test(o.secret)) {
    throw new PrewrappedDiskKeyError('secret', 'must be a secret name (1-63 printable ASCII characters)');
  }
  for (const field of ['version', 'generation'] as const) {
    if (typeof o[field] !== 'number' || !Number.isSafeInteger(o[field]) || (o[field] as number) < 1) {
      throw new PrewrappedDiskKeyError(field, 'must be an integer of at least 1');
    }
  }
  if (typeof o.deliveryId !== 'string' || !/^[\x21-\x7e]{1,128}$/.test(o.deliveryId)) {
    throw new PrewrappedDiskKeyError('deliveryId', 'must be 1-128 printable ASCII characters');
  }
  if (typeof o.envelope !== 'string' || o.envelope.length === 0 || !BASE64.test(o.envelope)) {
    throw new PrewrappedDiskKeyError('envelope', 'must be padded base64');
  }
  if (o.approvals === null || typeof o.approvals !== 'object' || Array.isArray(o.approvals)) {
    throw new PrewrappedDiskKeyError('approvals', 'must be the group\'s approvals (an object)');
  }
  return o as unknown as PrewrappedDiskKey;
}
