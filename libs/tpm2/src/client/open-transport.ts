import type { TpmTransport } from './transport';

/** A --tpm argument that names no transport rackseal speaks. */
export class TpmDeviceSyntaxError extends Error {
  constructor(device: string) {
    super(`unrecognised TPM device ${JSON.stringify(device)}: use /dev/tpmrm0, /dev/tpm0 or swtpm:HOST:PORT`);
    this.name = 'TpmDeviceSyntaxError';
  }
}

/**
 * Opens the transport a DEVICE argument names (docs/architecture.md §6): `swtpm:HOST:PORT` for swtpm's TCP data
 * channel, or a path to a character device (default `/dev/tpmrm0`). Each transport's file is loaded
 * by import() when named: on a machine's TPM the agent's boot unlock then loads no `node:net` and its
 * streams (docs/decisions.md "Boot unlock loads single files").
 */
export async function openTransport(device = '/dev/tpmrm0', options: { timeoutMs?: number } = {}): Promise<TpmTransport> {
  const swtpm = /^swtpm:(.+):(\d{1,5})$/.exec(device);
  if (swtpm !== null) {
    const port = Number(swtpm[2]);
    if (port < 1 || port > 65535) {
      throw new TpmDeviceSyntaxError(device);
    }
    const { SwtpmTcpTransport } = await import('./swtpm-transport');
    return new SwtpmTcpTransport(swtpm[1]!.replace(/^\[|\]$/g, ''), port, options.timeoutMs);
  }
  if (device.startsWith('/')) {
    const { CharacterDeviceTransport } = await import('./device-transport');
    return CharacterDeviceTransport.open(device, options);
  }
  throw new TpmDeviceSyntaxError(device);
}
