/**
 * Why a delivered secret was not installed, one code per cause so the delivery loop can report it
 * (and decide whether trying again can help). Messages name the secret, the file or device and the
 * cause, never the secret's bytes.
 */
export type InstallErrorCode =
  /** The config file has no `installs` entry for the secret: nothing is written. */
  | 'install.no-target'
  /** The delivery's kind is not the kind the config names for that secret, or not the payload's. */
  | 'install.kind-mismatch'
  /** The certificate and the key delivered together are not a pair, or do not parse. */
  | 'install.bad-material'
  /** An owner or group name is in neither /etc/passwd nor /etc/group. */
  | 'install.unknown-owner'
  /** Writing a file failed (permissions, full disk, read-only file system). */
  | 'install.io'
  /** The device is not a LUKS2 device (or its detached header is not a LUKS2 header). */
  | 'disk.not-luks2'
  /** The disk key's size is not the config's keySize. */
  | 'disk.key-size'
  /** The disk's header holds more than one rackseal token, or one of another layout: an operator must look. */
  | 'disk.token-conflict'
  /** The header holds the token of another secret. */
  | 'disk.other-secret'
  /** Neither the current rackseal key nor the enrollment key file opens a keyslot: no new key can be added. */
  | 'disk.no-authorizing-key'
  /** No free keyslot is left (LUKS2 has 32). */
  | 'disk.no-free-keyslot'
  /**
   * A delivery of the disk's own generation, wrapped at a newer approval epoch, holds a key that does
   * not open the token's keyslot: the envelope is not taken (docs/decisions.md "Withdrawn states").
   */
  | 'disk.key-mismatch'
  /** The PCR-sealed envelope does not fit in the header's token area. */
  | 'disk.envelope-too-large'
  /** cryptsetup failed otherwise, or did not finish in time. */
  | 'disk.cryptsetup';

export class InstallError extends Error {
  constructor(
    readonly code: InstallErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'InstallError';
  }
}
