/**
 * The `--tpm <device>` argument of `rackseal-agent` commands. The default is the kernel resource
 * manager, which flushes what a crashed agent leaves behind; libs/tpm2's openTransport parses the forms.
 */
export const DEFAULT_TPM_DEVICE = '/dev/tpmrm0';

export const TPM_DEVICE_OPTION = {
  flags: '--tpm <device>',
  description: 'TPM device: /dev/tpmrm0, /dev/tpm0 or swtpm:HOST:PORT',
  defaultValue: DEFAULT_TPM_DEVICE,
} as const;
