/**
 * Why `rackseal-agent unlock` printed no key, one code per cause. Messages name the device, the
 * token, the group and epoch, never key material (the caller's stdout stays empty on every one).
 */
export type UnlockErrorCode =
  /** The device is not a readable LUKS2 device (or cryptsetup cannot read it). */
  | 'unlock.not-luks2'
  /** The header has no rackseal token, or one without a key or an envelope yet. */
  | 'unlock.no-token'
  /** The token's envelope does not parse, or is not a PCR-sealed disk key of the token's generation. */
  | 'unlock.bad-envelope'
  /** No approvals of the envelope's group and epoch in the token, the state dir's cache or (--online) the server's answer. */
  | 'unlock.no-approvals'
  /** --crypttab-peer: the volume or its device cannot be found. */
  | 'unlock.no-volume'
  /** --prewrapped: the device holds something (not LUKS2 and not blank, or a LUKS2 header the file's key does not open). */
  | 'unlock.not-blank'
  /** --prewrapped: the provisioning file cannot be read or is not one. */
  | 'unlock.bad-prewrap-file';

export class UnlockError extends Error {
  constructor(
    readonly code: UnlockErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'UnlockError';
  }
}
